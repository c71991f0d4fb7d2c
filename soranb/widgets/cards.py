"""RecordCard: one generation in the history grid, updated in place.

A card is composed once; `update(record)` then changes only the traits whose
value differs (traitlets sends nothing for an unchanged value), so a progress
event costs one small message for the progress bar, not a new card.

A card may also be given another record (`show(record)`): the grid reuses the
card models of records that left the page instead of making and removing
models, because the browser rebuilds every card after the first changed
position of a box's children (and a rebuilt `<video>` stops playing).

Every widget model is saved with the notebook's widget state, so a card is kept
small: its content widgets and buttons, one layout of its own (its position in
the grid), and the styles and other layouts, shared by all cards of a grid
(`CardParts`). What a card shows or hides is decided by its `children` tuples.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import ipywidgets as widgets
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..records import GenerationRecord, Status, parse_lineage
from ..report import (
    UrlFor,
    download_html,
    error_html,
    esc,
    media_html,
    progress_note_html,
    record_meta_html,
    starting_image_html,
    status_badge_html,
)
from ..sprites import Spritesheet
from ._base import hold
from .card_actions import Action, ActionField, BudgetLeft

if TYPE_CHECKING:
    from .scrub import ScrubStrip

__all__ = ["CardParts", "RecordCard", "lineage_html", "tags_html"]

SourcePrompt = Callable[[str], "str | None"]
_LINEAGE_WORDS = {"extend": "extended from", "edit": "edited from"}


def lineage_html(record: GenerationRecord, source_prompt: str | None = None) -> str:
    """ "extended from “…”" / "edited from …": the source named by prompt when known, else by a short id."""
    parsed = parse_lineage(record.lineage)
    if parsed is None:
        return ""
    kind, source_id = parsed
    if source_prompt:
        short = source_prompt if len(source_prompt) <= 60 else source_prompt[:59] + "…"
        source = f'“<span class="soranb-lineage-source">{esc(short)}</span>”'
    else:
        source = esc(source_id[:8])
    words = _LINEAGE_WORDS.get(kind, kind)
    return f'<div class="soranb-lineage" style="color:#6b7280;font-size:11px">{esc(words)} {source}</div>'


def tags_html(record: GenerationRecord) -> str:
    """The record's tags as small labels (escaped); nothing when it has none."""
    if not record.tags:
        return ""
    chips = "".join(
        f'<span class="soranb-tag" style="background:#eef2ff;border-radius:3px;padding:0 4px;margin-right:3px">'
        f"{esc(tag)}</span>"
        for tag in record.tags
    )
    return f'<div class="soranb-tags" style="font-size:11px">{chips}</div>'


class CardParts:
    """Layouts and styles shared by every card of one grid (one widget model each, not one per card)."""

    def __init__(self) -> None:
        self.wide = widgets.Layout(width="100%")
        self.auto = widgets.Layout(width="auto")
        self.row = widgets.Layout(flex_flow="row wrap")
        self.html_style = HTMLStyle()
        self.button_style = widgets.ButtonStyle()
        self.progress_style = ProgressStyle()

    def button(self, description: str, icon: str = "", style: str = "", css: str = "") -> widgets.Button:
        """A card button on the shared layout and style; `css` is a class the browser tests find it by."""
        made = widgets.Button(
            description=description, icon=icon, button_style=style, layout=self.auto, style=self.button_style
        )
        if css:
            made.add_class(css)
        return made

    def close(self) -> None:
        for part in vars(self).values():
            part.close()


class RecordCard(widgets.VBox):
    """Status badge, prompt and facts, error, thumbnail or player, download link, progress, actions.

    CSS: the root has `soranb-card` and `soranb-card-<record id>` (found without data attributes).
    Delete is two-step: Delete shows Confirm / Cancel; Confirm calls `on_delete(record_id)`.
    Remix, Extend and Edit (completed cards) open one field on the card itself (`ActionField`),
    priced before Start: the source is this card's record, by id, whatever else happens in the
    grid; Start calls `on_remix(record_id, text)`, `on_extend(record_id, text, seconds)` or
    `on_edit(record_id, text)`. `budget_left()` (what may still be spent, None without a limit)
    lets the field say when Start would be refused. Edit and retry (failed cards) calls
    `on_retry(record)`; Use these settings (other cards) calls `on_reuse(record)`; the star calls
    `on_favourite(record_id, favourite)`; Compare (completed cards) calls `on_compare(record_id)` and
    shows whether the card is picked (`set_compared`). A button whose callback is not given is not shown.
    """

    def __init__(
        self,
        record: GenerationRecord,
        url_for: UrlFor,
        on_delete: Callable[[str], None],
        on_remix: Callable[[str, str], object] | None = None,
        wrap: Callable[[Callable[..., None]], Callable[..., None]] = lambda f: f,
        parts: CardParts | None = None,
        on_retry: Callable[[GenerationRecord], None] | None = None,
        source_prompt: SourcePrompt | None = None,
        *,
        on_extend: Callable[[str, str, int], object] | None = None,
        on_edit: Callable[[str, str], object] | None = None,
        on_reuse: Callable[[GenerationRecord], None] | None = None,
        on_favourite: Callable[[str, bool], object] | None = None,
        budget_left: BudgetLeft | None = None,
        on_compare: Callable[[str], object] | None = None,
    ) -> None:
        self.record = record
        self._url_for = url_for
        self._on_delete = on_delete
        self._on_remix = on_remix
        self._on_extend = on_extend
        self._on_edit = on_edit
        self._on_retry = on_retry
        self._on_reuse = on_reuse
        self._on_favourite = on_favourite
        self._on_compare = on_compare
        self._source_prompt = source_prompt or (lambda _id: None)
        self._media_key: tuple[object, ...] | None = None
        self.scrub: ScrubStrip | None = None  # made when a record first has a spritesheet to scrub
        self._scrub_shown = False
        self._confirming = False
        self._hidden = False
        self._own_parts = parts is None
        self.parts = parts = parts if parts is not None else CardParts()
        self._wrap = wrap
        self._budget_left = budget_left
        self._action: ActionField | None = None  # made when a field is first opened: most cards never do
        self.info = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.media = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.progress = widgets.IntProgress(min=0, max=100, layout=parts.wide, style=parts.progress_style)
        self.progress_note = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self._make_buttons(wrap)
        self.actions = widgets.HBox(layout=parts.row)
        super().__init__(layout=widgets.Layout(border="1px solid #d1d5db", padding="6px", margin="4px", width="340px"))
        self.add_class("soranb-card")
        self.add_class(f"soranb-card-{record.id}")
        try:
            self._apply(record, force=True)
        except BaseException:  # e.g. a URL lookup failed: leave no half-made widgets behind
            self.close_all()
            raise

    def _make_buttons(self, wrap: Callable[[Callable[..., None]], Callable[..., None]]) -> None:
        """The card's buttons, each click passed through `wrap` (the grid's toasts show its errors)."""
        button = self.parts.button
        self.delete_button = button("Delete", "trash")
        self.confirm_button = button("Confirm delete", style="danger")
        self.cancel_button = button("Cancel")
        self.remix_button = button("Remix", "random")
        self.extend_button = button("Extend", "forward", css="soranb-extend")
        self.edit_button = button("Edit", "pencil-square-o", css="soranb-edit")
        self.retry_button = button("Edit and retry", "pencil")
        self.reuse_button = button("Use these settings", "clone", css="soranb-reuse")
        self.favourite_button = button("☆", css="soranb-favourite")
        self.compare_button = button("Compare", "columns", css="soranb-compare-pick")
        clicks: list[tuple[widgets.Button, Callable[[], object]]] = [
            (self.delete_button, self.ask_delete),
            (self.cancel_button, self.cancel_delete),
            (self.confirm_button, lambda: self._on_delete(self.record.id)),
            (self.remix_button, lambda: self.open_action("remix")),
            (self.extend_button, lambda: self.open_action("extend")),
            (self.edit_button, lambda: self.open_action("edit")),
            (self.retry_button, self._retry),
            (self.reuse_button, self._reuse),
            (self.favourite_button, self.toggle_favourite),
            (self.compare_button, self._compare_clicked),
        ]
        for widget, action in clicks:
            widget.on_click(wrap(lambda _b, act=action: act()))

    # -- state ------------------------------------------------------------------------
    def update(self, record: GenerationRecord) -> bool:
        """Show `record` if it is not older than what is shown; True when applied."""
        if record.id != self.record.id or record.updated_at < self.record.updated_at:
            return False
        self._apply(record)
        return True

    def show(self, record: GenerationRecord) -> None:
        """Give this card model another record (a reused card starts fresh: no open field or delete).

        The content is computed first: a URL lookup that raises leaves the card as it was.
        """
        old_id = self.record.id
        if self._hidden or record.id != old_id:
            self._apply(record, force=True)
            self._confirming = False
            if self._action is not None:
                self._action.reset()
            self.remove_class(f"soranb-card-{old_id}")
            self.add_class(f"soranb-card-{record.id}")
            self._hidden = False
            self._arrange()
        else:
            self.update(record)

    def place(self, position: int) -> None:
        """Show the card at `position` on the page (CSS order: the grid's children never move)."""
        with hold(self.layout):
            self.layout.order = str(position)
            self.layout.display = None

    def hide(self) -> None:
        """Off the page, kept as a spare: no player left running out of sight."""
        self._confirming = False
        if self._action is not None:
            self._action.close_field()
        self._hidden = True
        self.remove_class(f"soranb-card-{self.record.id}")
        with hold(self.layout, self.media, self.info):
            self.layout.display = "none"
            self.media.value = ""
            self.info.value = ""
            self._media_key = None
            self._scrub_shown = False

    def _media(self, record: GenerationRecord, sheet: Spritesheet | None) -> tuple[str, str]:
        """The player (or thumbnail) and download link as HTML, and the spritesheet's URL."""
        media = media_html(record, self._url_for) + f"<div>{download_html(record, self._url_for)}</div>"
        return media, self._url_for(sheet.key) if sheet is not None else ""

    def _renew_media(self, media: str, sheet_src: str) -> None:
        """Assign only what changed: the same HTML again would rebuild a playing `<video>`."""
        if media != self.media.value:
            self.media.value = media
        if self._scrub_shown and self.scrub is not None and sheet_src:
            self.scrub.src = sheet_src  # traitlets sends nothing when it is the same

    def _source(self, record: GenerationRecord) -> tuple[str | None, str | None]:
        """The prompts of the record this one remixes, and of the one it extends or edits."""
        remixed = self._source_prompt(record.remixed_from) if record.remixed_from else None
        parsed = parse_lineage(record.lineage)
        derived = self._source_prompt(parsed[1]) if parsed is not None else None
        return remixed, derived

    def _apply(self, record: GenerationRecord, force: bool = False) -> None:
        # The media is rebuilt when the fields it shows change; otherwise only a renewed URL (one
        # near its expiry, see `MediaUrls`) is taken, so a playing video is left alone while its URL
        # is good. It is computed before anything is assigned: a URL lookup that raises leaves the
        # card as it was.
        sheet = Spritesheet.of(record) if record.status == Status.COMPLETED else None
        media_key = (record.id, record.status, record.video_key, record.thumbnail_key, sheet)
        media, sheet_src = self._media(record, sheet)
        rebuild = force or media_key != self._media_key
        remixed, derived = self._source(record)
        start_image = starting_image_html(record, self._url_for)
        self.record = record
        with hold(self.progress, self.progress_note, self.info, self.media, self.favourite_button, self):
            self.progress.value = max(0, min(100, int(record.progress)))
            self.progress.description = f"{int(record.progress)}%"
            self.progress_note.value = progress_note_html(record)
            self.info.value = (
                status_badge_html(record.status.value)
                + record_meta_html(record, source_prompt=remixed)
                + lineage_html(record, derived)
                + tags_html(record)
                + start_image
                + error_html(record)
            )
            self.favourite_button.description = "★" if record.favourite else "☆"
            self.favourite_button.tooltip = "Favourite: click to unmark" if record.favourite else "Mark as favourite"
            if rebuild:
                self._media_key = media_key
                self.media.value = media
                self._show_scrub(record, sheet, sheet_src)
            else:
                self._renew_media(media, sheet_src)
            if record.is_open:
                self.add_class("soranb-card-running")
            else:
                self.remove_class("soranb-card-running")
            self._arrange()

    def _show_scrub(self, record: GenerationRecord, sheet: Spritesheet | None, src: str) -> None:
        """The spritesheet strip above the player when there is one (made on first use: a card
        without one carries no scrub model, and `import soranb.widgets` does not load anywidget)."""
        self._scrub_shown = sheet is not None and bool(src)
        if sheet is None or not src:
            return
        if self.scrub is None:
            from .scrub import ScrubStrip

            self.scrub = ScrubStrip(layout=self.parts.wide)
        width, _, height = record.size.partition("x")
        with self.scrub.hold_sync():
            self.scrub.src = src
            self.scrub.columns, self.scrub.rows, self.scrub.frames = sheet.columns, sheet.rows, sheet.frames
            self.scrub.seconds = float(record.seconds)
            self.scrub.aspect = f"{int(width)} / {int(height)}" if width.isdigit() and height.isdigit() else "16 / 9"

    def _actions(self) -> tuple[widgets.Widget, ...]:
        """The buttons this record offers, given the callbacks this card has."""
        if self._confirming:
            return (self.confirm_button, self.cancel_button)
        status = self.record.status
        offered: list[tuple[object, widgets.Button]] = [(self._on_favourite, self.favourite_button)]
        if status == Status.COMPLETED:
            offered += [
                (self._on_remix, self.remix_button),
                (self._on_extend, self.extend_button),
                (self._on_edit, self.edit_button),
                (self._on_compare, self.compare_button),
            ]
        if status == Status.FAILED:
            offered.append((self._on_retry, self.retry_button))
        elif not self.record.is_unreadable:
            offered.append((self._on_reuse, self.reuse_button))
        return (*(b for callback, b in offered if callback is not None), self.delete_button)

    def _arrange(self) -> None:
        """Which widgets show: progress while running, Confirm/Cancel while confirming, the action field."""
        actions = self._actions()
        if self.actions.children != actions:
            self.actions.children = actions
        running = (self.progress, self.progress_note) if self.record.is_open else ()
        completed = self.record.status == Status.COMPLETED
        field = (self._action,) if self._action is not None and self._action.kind is not None and completed else ()
        scrub = (self.scrub,) if self._scrub_shown and self.scrub is not None else ()
        shown: tuple[widgets.Widget, ...] = (self.info, *scrub, self.media, *running, self.actions, *field)
        if tuple(self.children) != shown:  # type: ignore[has-type]
            self.children = shown

    # -- remix, extend and edit on the card ------------------------------------------------
    @property
    def acting(self) -> Action | None:
        """Which field is open on the card (remix, extend or edit), None when none is."""
        return self._action.kind if self._action is not None else None

    @property
    def remixing(self) -> bool:
        return self.acting == "remix"

    @property
    def action(self) -> ActionField:
        """The remix / extend / edit field of this card (made on first use, then kept)."""
        if self._action is None:
            self._action = ActionField(self.parts, self._wrap, self._start_action, self._budget_left)
            self._action.go.on_click(self._wrap(self._start_clicked))
            self._action.cancel.on_click(self._wrap(lambda _b: self.close_action()))
        return self._action

    def open_action(self, kind: Action) -> None:
        """Show the field for `kind` on this card, priced, with the cursor in it."""
        self.action.open_for(kind, self.record)
        self._arrange()
        self.action.text.focus()  # once it is on the card: a view that does not exist yet cannot take focus

    def open_remix(self) -> None:
        self.open_action("remix")

    def close_action(self) -> None:
        self.action.close_field()
        self._arrange()

    def start_action(self) -> object:
        """Start the open field's action with its prompt (errors go to the grid's toasts)."""
        started = self.action.start()
        self._arrange()
        return started

    def _start_clicked(self, _button: widgets.Button) -> None:
        self.start_action()

    def _start_action(self, kind: Action, text: str, seconds: int) -> object:
        record_id = self.record.id
        if kind == "remix" and self._on_remix is not None:
            return self._on_remix(record_id, text)
        if kind == "extend" and self._on_extend is not None:
            return self._on_extend(record_id, text, seconds)
        if kind == "edit" and self._on_edit is not None:
            return self._on_edit(record_id, text)
        return None

    def _retry(self) -> None:
        if self._on_retry is not None:
            self._on_retry(self.record)

    def _reuse(self) -> None:
        if self._on_reuse is not None:
            self._on_reuse(self.record)

    def _compare_clicked(self) -> None:
        if self._on_compare is not None:
            self._on_compare(self.record.id)

    def set_compared(self, picked: bool) -> None:
        """Show whether this card's video is picked for the history's compare."""
        self.compare_button.description = "✓ Compare" if picked else "Compare"
        self.compare_button.button_style = "info" if picked else ""

    def toggle_favourite(self) -> None:
        if self._on_favourite is not None:
            self._on_favourite(self.record.id, not self.record.favourite)

    # -- two-step delete --------------------------------------------------------------
    @property
    def confirming(self) -> bool:
        return self._confirming

    def ask_delete(self) -> None:
        self._confirming = True
        self._arrange()

    def cancel_delete(self) -> None:
        self._confirming = False
        self._arrange()

    @property
    def html(self) -> str:
        """Everything the card shows as HTML (what tests and the static view inspect)."""
        return str(self.info.value + self.media.value)

    def close_all(self) -> None:
        """Close the card, then the widgets it made (shared parts stay with their grid).

        The caller has already taken the card out of its parent's children.
        """
        self.close()
        layout = self.layout
        for child in (
            self.info,
            self.media,
            self.progress,
            self.progress_note,
            self.delete_button,
            self.confirm_button,
            self.cancel_button,
            self.remix_button,
            self.extend_button,
            self.edit_button,
            self.retry_button,
            self.reuse_button,
            self.favourite_button,
            self.compare_button,
            self.actions,
            layout,
        ):
            child.close()
        if self._action is not None:
            self._action.close_all()
        if self.scrub is not None:
            self.scrub.close()
        if self._own_parts:
            self.parts.close()

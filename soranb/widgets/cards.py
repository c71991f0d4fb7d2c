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

import ipywidgets as widgets
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..records import GenerationRecord, Status
from ..report import (
    UrlFor,
    download_html,
    error_html,
    format_cost,
    media_html,
    progress_note_html,
    record_meta_html,
    starting_image_html,
    status_badge_html,
)
from ._base import hold

__all__ = ["CardParts", "RecordCard"]

SourcePrompt = Callable[[str], "str | None"]


class CardParts:
    """Layouts and styles shared by every card of one grid (one widget model each, not one per card)."""

    def __init__(self) -> None:
        self.wide = widgets.Layout(width="100%")
        self.auto = widgets.Layout(width="auto")
        self.row = widgets.Layout(flex_flow="row wrap")
        self.html_style = HTMLStyle()
        self.button_style = widgets.ButtonStyle()
        self.progress_style = ProgressStyle()

    def close(self) -> None:
        for part in vars(self).values():
            part.close()


class RecordCard(widgets.VBox):
    """Status badge, prompt and facts, error, thumbnail or player, download link, progress, actions.

    CSS: the root has `soranb-card` and `soranb-card-<record id>` (found without data attributes).
    Delete is two-step: Delete shows Confirm / Cancel; Confirm calls `on_delete(record_id)`.
    Remix (completed cards) opens a labelled field on the card itself: the source is this card's
    record, by id, whatever else happens in the grid; Start calls `on_remix(record_id, text)`.
    Edit and retry (failed cards) calls `on_retry(record)`.
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
    ) -> None:
        self.record = record
        self._url_for = url_for
        self._on_delete = on_delete
        self._on_remix = on_remix
        self._on_retry = on_retry
        self._source_prompt = source_prompt or (lambda _id: None)
        self._media_key: tuple[object, ...] | None = None
        self._confirming = False
        self._remixing = False
        self._hidden = False
        self._own_parts = parts is None
        self.parts = parts = parts if parts is not None else CardParts()

        def button(description: str, icon: str = "", style: str = "") -> widgets.Button:
            return widgets.Button(
                description=description, icon=icon, button_style=style, layout=parts.auto, style=parts.button_style
            )

        self.info = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.media = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.progress = widgets.IntProgress(min=0, max=100, layout=parts.wide, style=parts.progress_style)
        self.progress_note = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.delete_button = button("Delete", "trash")
        self.confirm_button = button("Confirm delete", style="danger")
        self.cancel_button = button("Cancel")
        self.remix_button = button("Remix", "random")
        self.retry_button = button("Edit and retry", "pencil")
        self.remix_label = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.remix_text = widgets.Text(placeholder="What to change, e.g. make it night", layout=parts.wide)
        self.remix_text.add_class("soranb-remix-text")
        self.remix_go = button("Start remix", "play", "primary")
        self.remix_go.add_class("soranb-remix-go")
        self.remix_cancel = button("Cancel")
        self.delete_button.on_click(wrap(lambda _b: self.ask_delete()))
        self.cancel_button.on_click(wrap(lambda _b: self.cancel_delete()))
        self.confirm_button.on_click(wrap(lambda _b: self._on_delete(self.record.id)))
        self.remix_button.on_click(wrap(lambda _b: self.open_remix()))
        self.remix_cancel.on_click(wrap(lambda _b: self.close_remix()))
        self.remix_go.on_click(wrap(lambda _b: self._start_remix_clicked()))
        self.retry_button.on_click(wrap(lambda _b: self._retry()))
        self.actions = widgets.HBox(layout=parts.row)
        self.remix_box = widgets.VBox(
            [self.remix_label, self.remix_text, widgets.HBox([self.remix_go, self.remix_cancel], layout=parts.row)],
            layout=parts.wide,
        )
        self.remix_box.add_class("soranb-remix-box")
        super().__init__(layout=widgets.Layout(border="1px solid #d1d5db", padding="6px", margin="4px", width="340px"))
        self.add_class("soranb-card")
        self.add_class(f"soranb-card-{record.id}")
        try:
            self._apply(record, force=True)
        except BaseException:  # e.g. a URL lookup failed: leave no half-made widgets behind
            self.close_all()
            raise

    # -- state ------------------------------------------------------------------------
    def update(self, record: GenerationRecord) -> bool:
        """Show `record` if it is not older than what is shown; True when applied."""
        if record.id != self.record.id or record.updated_at < self.record.updated_at:
            return False
        self._apply(record)
        return True

    def show(self, record: GenerationRecord) -> None:
        """Give this card model another record (a reused card starts fresh: no open remix or delete).

        The content is computed first: a URL lookup that raises leaves the card as it was.
        """
        old_id = self.record.id
        if self._hidden or record.id != old_id:
            self._apply(record, force=True)
            self._confirming = self._remixing = False
            self.remix_text.value = ""
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
        self._confirming = self._remixing = False
        self._hidden = True
        self.remove_class(f"soranb-card-{self.record.id}")
        with hold(self.layout, self.media, self.info):
            self.layout.display = "none"
            self.media.value = ""
            self.info.value = ""
            self._media_key = None

    def refresh_media(self) -> None:
        """Rebuild the player only if its URLs changed (a signed URL renewed): else leave it playing."""
        media = media_html(self.record, self._url_for) + f"<div>{download_html(self.record, self._url_for)}</div>"
        if media != self.media.value:
            self.media.value = media

    def _apply(self, record: GenerationRecord, force: bool = False) -> None:
        # Media HTML depends on few fields: rebuild it (and ask for URLs) only when those change, so
        # a playing video is left alone. It is computed before anything is assigned, so a URL lookup
        # that raises leaves the card as it was.
        media_key = (record.id, record.status, record.video_key, record.thumbnail_key)
        media = None
        if force or media_key != self._media_key:
            media = media_html(record, self._url_for) + f"<div>{download_html(record, self._url_for)}</div>"
        source = self._source_prompt(record.remixed_from) if record.remixed_from else None
        start_image = starting_image_html(record, self._url_for)
        self.record = record
        with hold(self.progress, self.progress_note, self.info, self.media, self):
            self.progress.value = max(0, min(100, int(record.progress)))
            self.progress.description = f"{int(record.progress)}%"
            self.progress_note.value = progress_note_html(record)
            self.info.value = (
                status_badge_html(record.status.value)
                + record_meta_html(record, source_prompt=source)
                + start_image
                + error_html(record)
            )
            if media is not None:
                self._media_key = media_key
                self.media.value = media
            if record.is_open:
                self.add_class("soranb-card-running")
            else:
                self.remove_class("soranb-card-running")
            self._arrange()

    def _arrange(self) -> None:
        """Which widgets show: progress while running, Confirm/Cancel while confirming, the remix field."""
        completed = self.record.status == Status.COMPLETED
        if self._confirming:
            actions: tuple[widgets.Widget, ...] = (self.confirm_button, self.cancel_button)
        elif self._on_remix is not None and completed:
            actions = (self.remix_button, self.delete_button)
        elif self._on_retry is not None and self.record.status == Status.FAILED:
            actions = (self.retry_button, self.delete_button)
        else:
            actions = (self.delete_button,)
        if self.actions.children != actions:
            self.actions.children = actions
        running = (self.progress, self.progress_note) if self.record.is_open else ()
        remix = (self.remix_box,) if self._remixing and completed else ()
        shown: tuple[widgets.Widget, ...] = (self.info, self.media, *running, self.actions, *remix)
        if tuple(self.children) != shown:  # type: ignore[has-type]
            self.children = shown

    # -- remix on the card ------------------------------------------------------------
    @property
    def remixing(self) -> bool:
        return self._remixing

    def open_remix(self) -> None:
        """Show the labelled remix field on this card and put the cursor in it."""
        self._remixing = True
        self.remix_label.value = (
            f'<span class="soranb-remix-label"><b>Remix this video</b> ({format_cost(self.record.cost)}): '
            "what should change?</span>"
        )
        self._arrange()
        self.remix_text.focus()

    def close_remix(self) -> None:
        self._remixing = False
        self._arrange()

    def start_remix(self) -> object:
        """Remix this card's record with the typed change (errors go to the grid's toasts)."""
        text = self.remix_text.value
        if not text.strip():
            raise ValueError("say what to change in the remix field first")
        if self._on_remix is None:
            return None
        self.remix_go.disabled = True
        try:
            started = self._on_remix(self.record.id, text)
        finally:
            self.remix_go.disabled = False
        if started is not None:
            self.remix_text.value = ""
            self.close_remix()
        return started

    def _start_remix_clicked(self) -> None:
        if self._remixing:  # a second click of a double-click finds the field already closed: nothing to do
            self.start_remix()

    def _retry(self) -> None:
        if self._on_retry is not None:
            self._on_retry(self.record)

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
            self.retry_button,
            self.remix_label,
            self.remix_text,
            self.remix_go,
            self.remix_cancel,
            *self.remix_box.children,
            self.remix_box,
            self.actions,
            layout,
        ):
            child.close()
        if self._own_parts:
            self.parts.close()

"""RecordCard: one generation in the history grid, updated in place.

A card is composed once; `update(record)` then changes only the traits whose
value differs (traitlets sends nothing for an unchanged value), so a progress
event costs one small message for the progress bar, not a new card.

Every widget model is saved with the notebook's widget state, so a card is kept
small: four content widgets and its buttons, and the layouts and styles, which
never change per card, are shared by all cards of a grid (`CardParts`). What a
card shows or hides is decided by its `children` tuples, never by mutating a
layout, so sharing layouts is safe.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets
from ipywidgets.widgets.widget_int import ProgressStyle
from ipywidgets.widgets.widget_string import HTMLStyle

from ..records import GenerationRecord, Status
from ..report import UrlFor, download_html, error_html, media_html, record_meta_html, status_badge_html
from ._base import hold

__all__ = ["CardParts", "RecordCard"]


class CardParts:
    """Layouts and styles shared by every card of one grid (one widget model each, not one per card)."""

    def __init__(self) -> None:
        self.card_layout = widgets.Layout(border="1px solid #d1d5db", padding="6px", margin="4px", width="340px")
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
    """Status badge, prompt and facts, error, thumbnail or player, download link, progress, delete.

    CSS: the root has `soranb-card` and `soranb-card-<record id>` (found without data attributes).
    Delete is two-step: Delete shows Confirm / Cancel; Confirm calls `on_delete(record_id)`.
    """

    def __init__(
        self,
        record: GenerationRecord,
        url_for: UrlFor,
        on_delete: Callable[[str], None],
        on_remix: Callable[[str], None] | None = None,
        wrap: Callable[[Callable[..., None]], Callable[..., None]] = lambda f: f,
        parts: CardParts | None = None,
    ) -> None:
        self.record = record
        self._url_for = url_for
        self._on_delete = on_delete
        self._media_key: tuple[object, ...] | None = None
        self._confirming = False
        self._own_parts = parts is None
        self.parts = parts = parts if parts is not None else CardParts()

        def button(description: str, icon: str = "", style: str = "") -> widgets.Button:
            return widgets.Button(
                description=description, icon=icon, button_style=style, layout=parts.auto, style=parts.button_style
            )

        self.info = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.media = widgets.HTML(layout=parts.wide, style=parts.html_style)
        self.progress = widgets.IntProgress(min=0, max=100, layout=parts.wide, style=parts.progress_style)
        self.delete_button = button("Delete", "trash")
        self.confirm_button = button("Confirm delete", style="danger")
        self.cancel_button = button("Cancel")
        self.remix_button = button("Remix", "random")
        self.delete_button.on_click(wrap(lambda _b: self.ask_delete()))
        self.cancel_button.on_click(wrap(lambda _b: self.cancel_delete()))
        self.confirm_button.on_click(wrap(lambda _b: self._on_delete(self.record.id)))
        if on_remix is not None:
            self.remix_button.on_click(wrap(lambda _b: on_remix(self.record.id)))
        self._can_remix = on_remix is not None
        self.actions = widgets.HBox(layout=parts.row)
        super().__init__(layout=parts.card_layout)
        self.add_class("soranb-card")
        self.add_class(f"soranb-card-{record.id}")
        self._apply(record, force=True)

    # -- state ------------------------------------------------------------------------
    def update(self, record: GenerationRecord) -> bool:
        """Show `record` if it is not older than what is shown; True when applied."""
        if record.id != self.record.id or record.updated_at < self.record.updated_at:
            return False
        self._apply(record)
        return True

    def _apply(self, record: GenerationRecord, force: bool = False) -> None:
        # Media HTML depends on few fields: rebuild it (and ask for URLs) only when those change.
        # It is computed before anything is assigned, so a URL lookup that raises leaves the card as it was.
        media_key = (record.status, record.video_key, record.thumbnail_key)
        media = None
        if force or media_key != self._media_key:
            media = media_html(record, self._url_for) + f"<div>{download_html(record, self._url_for)}</div>"
        self.record = record
        with hold(self.progress, self.info, self.media, self):
            self.progress.value = max(0, min(100, int(record.progress)))
            self.progress.description = f"{record.progress}%"
            self.info.value = status_badge_html(record.status.value) + record_meta_html(record) + error_html(record)
            if media is not None:
                self._media_key = media_key
                self.media.value = media
            self._arrange()

    def _arrange(self) -> None:
        """Which widgets show: the progress bar while running, Confirm/Cancel while confirming."""
        if self._confirming:
            actions: tuple[widgets.Widget, ...] = (self.confirm_button, self.cancel_button)
        elif self._can_remix and self.record.status == Status.COMPLETED:
            actions = (self.remix_button, self.delete_button)
        else:
            actions = (self.delete_button,)
        if self.actions.children != actions:
            self.actions.children = actions
        running = (self.progress,) if self.record.is_open else ()
        shown: tuple[widgets.Widget, ...] = (self.info, self.media, *running, self.actions)
        if tuple(self.children) != shown:  # type: ignore[has-type]
            self.children = shown

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
        return self.info.value + self.media.value

    def close_all(self) -> None:
        """Close the card, then the widgets it made (shared parts stay with their grid).

        The caller has already taken the card out of its parent's children.
        """
        self.close()
        for child in (
            self.info,
            self.media,
            self.progress,
            self.delete_button,
            self.confirm_button,
            self.cancel_button,
            self.remix_button,
            self.actions,
        ):
            child.close()
        if self._own_parts:
            self.parts.close()

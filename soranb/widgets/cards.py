"""RecordCard: one generation in the history grid, updated in place.

A card is composed once; `update(record)` then changes only the traits whose
value differs (traitlets sends nothing for an unchanged value), so a progress
event costs one small message for the progress bar, not a new card.
"""

from __future__ import annotations

from collections.abc import Callable

import ipywidgets as widgets

from ..records import GenerationRecord, Status
from ..report import UrlFor, download_html, error_html, media_html, record_meta_html, status_badge_html
from ._base import hold

__all__ = ["RecordCard"]


class RecordCard(widgets.VBox):
    """Status badge, progress, thumbnail or player, download link, error, prompt and facts, delete.

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
    ) -> None:
        self.record = record
        self._url_for = url_for
        self._on_delete = on_delete
        self._media_key: tuple[object, ...] | None = None

        self.badge = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=100, layout=widgets.Layout(width="95%"))
        self.media = widgets.HTML()
        self.meta = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.error = widgets.HTML()
        self.links = widgets.HTML()
        self.delete_button = widgets.Button(description="Delete", icon="trash", layout={"width": "auto"})
        self.confirm_button = widgets.Button(
            description="Confirm delete", button_style="danger", layout={"width": "auto", "display": "none"}
        )
        self.cancel_button = widgets.Button(description="Cancel", layout={"width": "auto", "display": "none"})
        self.remix_button = widgets.Button(description="Remix", icon="random", layout={"width": "auto"})
        self.delete_button.on_click(wrap(lambda _b: self.ask_delete()))
        self.cancel_button.on_click(wrap(lambda _b: self.cancel_delete()))
        self.confirm_button.on_click(wrap(lambda _b: self._on_delete(self.record.id)))
        if on_remix is not None:
            self.remix_button.on_click(wrap(lambda _b: on_remix(self.record.id)))
        self._can_remix = on_remix is not None
        actions = widgets.HBox(
            [self.links, self.remix_button, self.delete_button, self.confirm_button, self.cancel_button]
        )
        super().__init__(
            [self.badge, self.media, self.progress, self.meta, self.error, actions],
            layout=widgets.Layout(border="1px solid #d1d5db", padding="6px", margin="4px", width="340px"),
        )
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
            media = (media_html(record, self._url_for), download_html(record, self._url_for))
        old = self.record
        self.record = record
        with hold(self.badge, self.progress, self.progress.layout, self.remix_button.layout):
            self.badge.value = status_badge_html(record.status.value)
            self.progress.value = max(0, min(100, int(record.progress)))
            self.progress.description = f"{record.progress}%"
            self.progress.layout.display = "" if record.is_open else "none"
            self.remix_button.layout.display = "" if self._can_remix and record.status == Status.COMPLETED else "none"
            if media is not None:
                self._media_key = media_key
                self.media.value, self.links.value = media
            if force or (old.prompt, old.error_message) != (record.prompt, record.error_message):
                self.meta.value = record_meta_html(record)
                self.error.value = error_html(record)

    # -- two-step delete --------------------------------------------------------------
    def ask_delete(self) -> None:
        with hold(self.delete_button.layout, self.confirm_button.layout, self.cancel_button.layout):
            self.delete_button.layout.display = "none"
            self.confirm_button.layout.display = ""
            self.cancel_button.layout.display = ""

    def cancel_delete(self) -> None:
        with hold(self.delete_button.layout, self.confirm_button.layout, self.cancel_button.layout):
            self.delete_button.layout.display = ""
            self.confirm_button.layout.display = "none"
            self.cancel_button.layout.display = "none"

    @property
    def html(self) -> str:
        """Everything the card shows as HTML (what tests and the static view inspect)."""
        return "".join(w.value for w in (self.badge, self.media, self.meta, self.error, self.links))

    def close_all(self) -> None:
        """Close the card and every widget it made (frees their comms)."""
        for child in (
            self.badge,
            self.progress,
            self.media,
            self.meta,
            self.error,
            self.links,
            self.delete_button,
            self.confirm_button,
            self.cancel_button,
            self.remix_button,
            *self.children,
        ):
            child.close()
        self.close()

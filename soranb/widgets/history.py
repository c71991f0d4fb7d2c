"""HistoryGrid: the generations as cards, filtered, paged, and updated in place from service events.

Only one page is ever rendered (the store does the filtering, ordering and
paging), so a history of thousands stays as fast as a history of twelve.
Service events arrive on the service thread: they touch only the card of their
record (a dict record id -> card) under a lock, and never call back into the
service, which would wait on the very thread that is delivering the event.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import ipywidgets as widgets

from ..catalog import MODELS
from ..events import ServiceEvent
from ..records import OPEN_STATUSES, GenerationRecord, Status
from ..report import history_table_html
from ..store.base import RecordQuery
from ._base import StaticReprMixin, close_tree, hold, media_src
from .cards import CardParts, RecordCard
from .toasts import Toasts, guarded

__all__ = ["HistoryGrid"]


class HistoryGrid(StaticReprMixin, widgets.VBox):
    """One card per record on the current page, newest first by default.

    `on_remix(record_id)` is called by a completed card's Remix button (the app
    wires it to the form); without it the button is hidden.
    """

    def __init__(
        self,
        service: Any,
        page_size: int = 12,
        toasts: Toasts | None = None,
        on_remix: Callable[[str], None] | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.service = service
        self.page_size = page_size
        own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self.on_remix = on_remix
        self.page = 0
        self.total = 0
        self._lock = threading.RLock()
        self._cards: dict[str, RecordCard] = {}
        self._open_ids: set[str] = set()
        self._urls: dict[str, str] = {}
        self._guard = guarded(self.toasts)
        self._parts = CardParts()

        self.status_filter = widgets.Dropdown(
            options=[("All statuses", ""), *[(s.value, s.value) for s in Status]], description="Status"
        )
        self.model_filter = widgets.Dropdown(
            options=[("All models", ""), *[(spec.label, name) for name, spec in MODELS.items()]],
            description="Model",
        )
        self.search = widgets.Text(placeholder="Search prompts", continuous_update=False, description="Search")
        self.order = widgets.Dropdown(options=[("Newest first", True), ("Oldest first", False)], description="Order")
        self.prev_button = widgets.Button(description="Prev", icon="chevron-left", layout={"width": "auto"})
        self.next_button = widgets.Button(description="Next", icon="chevron-right", layout={"width": "auto"})
        self.page_label = widgets.HTML()
        self.refresh_button = widgets.Button(
            description="Refresh status", icon="refresh", layout={"width": "auto", "display": "none"}
        )
        self.refresh_button.add_class("soranb-refresh")
        self.reload_button = widgets.Button(description="Reload", icon="repeat", layout={"width": "auto"})
        self.empty_note = widgets.HTML("<em>No generations match.</em>")
        self.grid = widgets.Box(layout=widgets.Layout(display="flex", flex_flow="row wrap", width="100%"))

        parts: list[widgets.Widget] = [
            widgets.HBox([self.status_filter, self.model_filter]),
            widgets.HBox([self.search, self.order]),
            widgets.HBox(
                [self.prev_button, self.page_label, self.next_button, self.refresh_button, self.reload_button]
            ),
            self.empty_note,
            self.grid,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-history")

        for control in (self.status_filter, self.model_filter, self.search, self.order):
            control.observe(self._guard(self._on_filter), "value")
        self.prev_button.on_click(self._guard(lambda _b: self.go_to(self.page - 1)))
        self.next_button.on_click(self._guard(lambda _b: self.go_to(self.page + 1)))
        self.refresh_button.on_click(self._guard(lambda _b: self.refresh_status()))
        self.reload_button.on_click(self._guard(lambda _b: self.reload()))
        self._unsubscribe: Callable[[], None] | None = service.subscribe(self._on_event)
        self.reload()

    # -- queries ----------------------------------------------------------------------
    def query(self) -> RecordQuery:
        """The filters as a store query for the current page."""
        status = self.status_filter.value
        return RecordQuery(
            statuses=frozenset({Status(status)}) if status else None,
            model=self.model_filter.value or None,
            search=self.search.value.strip() or None,
            limit=self.page_size,
            offset=self.page * self.page_size,
            newest_first=bool(self.order.value),
        )

    def _matches(self, record: GenerationRecord) -> bool:
        query = self.query()
        if query.statuses is not None and record.status not in query.statuses:
            return False
        if query.model is not None and record.model != query.model:
            return False
        return not (query.search and query.search.lower() not in record.prompt.lower())

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @property
    def cards(self) -> list[RecordCard]:
        """The cards on screen, in order."""
        return [c for c in self.grid.children if isinstance(c, RecordCard)]

    def card(self, record_id: str) -> RecordCard | None:
        return self._cards.get(record_id)

    def url_for(self, key: str) -> str:
        """A media key's browser URL, cached: a card re-renders without asking the service again."""
        url = self._urls.get(key)
        if url is None:
            url = self._urls[key] = media_src(self.service, key)
        return url

    # -- loading ----------------------------------------------------------------------
    def _on_filter(self, _change: dict[str, Any]) -> None:
        self.page = 0
        self.reload()

    def go_to(self, page: int) -> None:
        self.page = max(0, min(page, self.pages - 1))
        self.reload()

    def reload(self) -> None:
        """Fetch the current page and show it, reusing the cards of records already shown.

        The service is called without holding the lock: its thread may be waiting
        for the lock to deliver an event.
        """
        base = self.query()
        total = self.service.count_records(base)
        pages = max(1, -(-total // self.page_size))
        if self.page > pages - 1:
            self.page = pages - 1
        records = self.service.list_records(dataclasses.replace(base, offset=self.page * self.page_size))
        open_records = self.service.list_records(RecordQuery.open_jobs())
        with self._lock:
            self.total = total
            self._open_ids = {r.id for r in open_records}
            self._show(records)
            self._update_controls()

    def _make_card(self, record: GenerationRecord) -> RecordCard:
        return RecordCard(record, self.url_for, self._delete, self.on_remix, wrap=self._guard, parts=self._parts)

    def _show(self, records: list[GenerationRecord]) -> None:
        """Lock held: put `records` on screen; existing cards are updated, not rebuilt."""
        keep: dict[str, RecordCard] = {}
        for record in records:
            card = self._cards.get(record.id)
            if card is None:
                card = self._make_card(record)
            else:
                card.update(record)
            keep[record.id] = card
        gone = [card for record_id, card in self._cards.items() if record_id not in keep]
        self._cards = keep
        self.grid.children = tuple(keep.values())
        for card in gone:  # after the grid lets go of them
            card.close_all()

    def _update_controls(self) -> None:
        with hold(self.page_label, self.prev_button, self.next_button, self.refresh_button.layout, self.empty_note):
            self.page_label.value = (
                f'<span class="soranb-page">page {self.page + 1} of {self.pages} · {self.total:,} records</span>'
            )
            self.prev_button.disabled = self.page <= 0
            self.next_button.disabled = self.page >= self.pages - 1
            self.refresh_button.layout.display = "" if self._open_ids else "none"
            self.empty_note.layout.display = "none" if self._cards else ""

    # -- actions ----------------------------------------------------------------------
    def refresh_status(self) -> Any:
        """One poll of every open job, now (the cards follow through events)."""
        return self.service.poll_once()

    def _delete(self, record_id: str) -> None:
        """A card's Confirm: delete in the service, then refill the page."""
        self.service.delete(record_id)
        with self._lock:
            if self._remove_card(record_id):
                self.total = max(0, self.total - 1)
            self._open_ids.discard(record_id)
        self.toasts.success("Deleted the video and its files")
        self.reload()

    # -- events (service thread) ----------------------------------------------------------
    def _on_event(self, event: ServiceEvent) -> None:
        record = event.record
        if record is None or event.kind == "log":
            return
        with self._lock:
            if event.kind == "deleted" or record.status not in OPEN_STATUSES:
                self._open_ids.discard(record.id)
            else:
                self._open_ids.add(record.id)
            card = self._cards.get(record.id)
            if event.kind == "deleted":
                if self._remove_card(record.id):
                    self.total = max(0, self.total - 1)
            elif event.kind == "created":
                if card is None and self._matches(record):
                    self.total += 1
                    if self.page == 0 and self.order.value:
                        self._insert_first(record)
            elif card is not None:
                try:
                    card.update(record)
                except RuntimeError:  # the URL needs a service call (e.g. a signed URL): not from its thread
                    threading.Thread(target=self._update_later, args=(record,), daemon=True).start()
            self._update_controls()

    def _update_later(self, record: GenerationRecord) -> None:
        """Off the service thread: resolve the URLs a card needs, then show the record."""
        try:
            for key in (record.video_key, record.thumbnail_key):
                if key:
                    self.url_for(key)
            with self._lock:
                card = self._cards.get(record.id)
                if card is not None:
                    card.update(record)
        except Exception as exc:
            self.toasts.error(f"could not show the video of {record.id[:8]}: {type(exc).__name__}: {exc}")

    def _remove_card(self, record_id: str) -> bool:
        """Lock held: take a card off the page and close it; False when it was not shown."""
        card = self._cards.pop(record_id, None)
        if card is None:
            return False
        self.grid.children = tuple(c for c in self.grid.children if c is not card)
        card.close_all()
        return True

    def _insert_first(self, record: GenerationRecord) -> None:
        """Lock held: a new record on page 1 goes on top; the last card falls off the page."""
        card = self._make_card(record)
        shown = [card, *self.grid.children]
        dropped = shown[self.page_size :]
        self._cards = {record.id: card, **self._cards}
        self.grid.children = tuple(shown[: self.page_size])
        for old in dropped:
            if isinstance(old, RecordCard):
                self._cards.pop(old.record.id, None)
                old.close_all()

    def close(self) -> None:
        if getattr(self, "_unsubscribe", None):
            self._unsubscribe()  # type: ignore[misc]
            self._unsubscribe = None
        if hasattr(self, "_parts"):  # absent when __init__ failed early
            with self._lock:
                cards, self._cards = list(self._cards.values()), {}
                self.grid.children = ()
            for card in cards:  # each closes every widget it made, shown or not
                card.close_all()
            self._parts.close()
        close_tree(self)  # the controls

    # -- static view ------------------------------------------------------------------
    def _static_html(self) -> str:
        with self._lock:
            records = [card.record for card in self.cards]
        footer = f"page {self.page + 1} of {self.pages} · {self.total:,} records"
        return history_table_html(records, self.url_for, title="soranb history", footer=footer)

    def _static_text(self) -> str:
        return f"HistoryGrid: {self.total} records, page {self.page + 1} of {self.pages}"

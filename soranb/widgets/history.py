"""HistoryGrid: the generations as cards, filtered, paged, and updated in place from service events.

Only one page is ever rendered (the store does the filtering, ordering and
paging), so a history of thousands stays as fast as a history of twelve.

The grid never rebuilds what is on screen: the browser re-creates every child
view after the first changed position of a box's `children`, and a re-created
`<video>` stops. So the grid's children only ever grow (at the end); a card's
place on the page is its CSS `order`, a card that leaves the page is hidden and
kept as a spare, and the next record to show reuses a spare card. Insert,
delete, Reload and paging change only the cards whose record changed.
Service events are handed to the views' thread (`Delivery`: the kernel's loop, or
one worker), in order; each touches only the card of its record (a dict record
id -> card) under a lock. The page is a traitlet clamped by `@validate` against
the page count, and the count comes from the store, with diagnostics records left
out by the same query as the pages.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
from collections.abc import Callable
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets
import traitlets

from ..catalog import MODELS, estimate_cost
from ..errors import RecordNotFound, RequestInvalid
from ..events import ServiceEvent
from ..protocols import ServiceLike
from ..records import OPEN_STATUSES, GenerationRecord, Status, clean_tags, parse_lineage
from ..report import format_cost, history_table_html
from ..sprites import Spritesheet
from ..store.base import RecordQuery, is_diagnostic
from ._base import RepeatGuard, StaticReprMixin, close_tree, hold
from .cards import CardParts, RecordCard
from .delivery import Delivery, Later
from .media_urls import MediaUrls, shared_media_urls
from .style import stylesheet
from .toasts import Toasts, describe_exception, guarded, short_prompt

if TYPE_CHECKING:
    from .compare import CompareView  # anywidget loads only when a compare is made

__all__ = ["HistoryGrid"]


def _sources(record: GenerationRecord) -> list[str]:
    """The record ids a card names by prompt: what this record remixes, extends or edits."""
    lineage = parse_lineage(record.lineage)
    return [i for i in (record.remixed_from, lineage[1] if lineage else None) if i]


def _media_keys(record: GenerationRecord) -> list[str | None]:
    """The media a card shows by URL: the video, its thumbnail, the spritesheet it scrubs, its starting image."""
    sheet = Spritesheet.of(record) if record.status == Status.COMPLETED else None
    return [record.video_key, record.thumbnail_key, sheet.key if sheet is not None else None, record.image_key]


class HistoryGrid(StaticReprMixin, widgets.VBox):
    """One card per record on the current page, newest first by default.

    A completed card's Remix, Extend and Edit open a field on that card (the source is
    that record, by id), priced before Start. `on_retry(record)` is called by a failed
    card's "Edit and retry", `on_reuse(record)` by another card's "Use these settings"
    (the app wires both to the form); without them those buttons are hidden.
    The filters (status, model, search, favourites only, tag) are a store query.
    `search_delay_s`: the search box filters as you type, this long after the last key.
    `page` (0-based) is always a page that exists: setting it clamps to `0 .. pages - 1`.
    """

    page = traitlets.Int(0)
    total = traitlets.Int(0)  # records matching the filters, diagnostics records left out

    def __init__(
        self,
        service: ServiceLike,
        page_size: int = 12,
        toasts: Toasts | None = None,
        on_retry: Callable[[GenerationRecord], None] | None = None,
        *,
        on_reuse: Callable[[GenerationRecord], None] | None = None,
        search_delay_s: float = 0.35,
        repeat_guard: RepeatGuard | None = None,
        media_urls: MediaUrls | None = None,
    ) -> None:
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.service = service
        self.page_size = page_size
        own_toasts = toasts is None
        self.toasts = toasts if toasts is not None else Toasts()
        self.on_retry = on_retry
        self.on_reuse = on_reuse
        self._tags: frozenset[str] | None = None  # the tag filter, as stored tags are written
        self.search_delay_s = search_delay_s
        self.recent = repeat_guard or RepeatGuard()
        self._lock = threading.RLock()
        self._cards: dict[str, RecordCard] = {}  # shown, in page order
        self._spare: list[RecordCard] = []  # hidden, ready for the next record to show
        self._slots: list[RecordCard] = []  # the grid's children: only ever appended to
        self._open_ids: set[str] = set()
        self._prompts: dict[str, str] = {}  # record id -> prompt, to name a remix's source
        # the one cache of media URLs, shared with the other views of this service
        self.media_urls = media_urls if media_urls is not None else shared_media_urls(service)
        self._search_timer: Later | None = None
        self._confirm_key: object = None  # a repeated remix the user was asked about
        self._guard = guarded(self.toasts)
        self._delivery = Delivery(on_error=lambda exc: self.toasts.error(describe_exception(exc)))
        self._parts = CardParts()
        self._compare_ids: list[str] = []  # record ids picked for a compare, in the order picked
        self.compare_view: CompareView | None = None
        self._make_filters()
        self._make_pager_and_grid()

        parts: list[widgets.Widget] = [
            stylesheet(),
            widgets.HTML('<div class="soranb-section-title">History</div>'),
            widgets.HBox([self.status_filter, self.model_filter]),
            widgets.HBox([self.search, self.order]),
            widgets.HBox([self.tag_filter, self.favourite_filter]),
            widgets.HBox(
                [self.prev_button, self.page_label, self.next_button, self.refresh_button, self.reload_button]
            ),
            self.compare_bar,
            self.empty_note,
            self.grid,
            self.bottom_pager,
        ]
        if own_toasts:
            parts.append(self.toasts)
        super().__init__(parts)
        self.add_class("soranb-history")
        self._wire()
        self._unsubscribe: Callable[[], None] | None = service.subscribe(self._hand_over)
        self.reload()

    def _make_filters(self) -> None:
        """Status, model, search, order, tag and favourites: together, one store query."""
        self.status_filter = widgets.Dropdown(
            options=[("All statuses", ""), *[(s.value, s.value) for s in Status]], description="Status"
        )
        self.model_filter = widgets.Dropdown(
            options=[("All models", ""), *[(spec.label, name) for name, spec in MODELS.items()]],
            description="Model",
        )
        self.search = widgets.Text(placeholder="Search prompts", continuous_update=True, description="Search")
        self.search.add_class("soranb-search")
        self.favourite_filter = widgets.Checkbox(value=False, description="Favourites only", indent=False)
        self.favourite_filter.add_class("soranb-favourite-filter")
        self.tag_filter = widgets.Text(placeholder="any tag", description="Tag", continuous_update=False)
        self.tag_filter.add_class("soranb-tag-filter")
        self.order = widgets.Dropdown(options=[("Newest first", True), ("Oldest first", False)], description="Order")

    def _make_pager_and_grid(self) -> None:
        """Prev / Next (above and under the grid), Refresh and Reload, and the grid of cards."""
        self.prev_button = widgets.Button(description="Prev", icon="chevron-left", layout={"width": "auto"})
        self.next_button = widgets.Button(description="Next", icon="chevron-right", layout={"width": "auto"})
        self.page_label = widgets.HTML()
        self.refresh_button = widgets.Button(
            description="Refresh status", icon="refresh", layout={"width": "auto", "display": "none"}
        )
        self.refresh_button.add_class("soranb-refresh")
        self.reload_button = widgets.Button(description="Reload", icon="repeat", layout={"width": "auto"})
        self.reload_button.add_class("soranb-reload")
        self.empty_note = widgets.HTML("<em>No generations match.</em>")
        self.grid = widgets.Box(layout=widgets.Layout(display="flex", flex_flow="row wrap", width="100%"))
        self.grid.add_class("soranb-grid")
        # The same page controls under the grid too (one model shown twice: they stay in step).
        self.bottom_pager = widgets.HBox([self.prev_button, self.page_label, self.next_button])
        self.compare_go = widgets.Button(description="Compare picked", icon="columns", disabled=True)
        self.compare_go.add_class("soranb-compare-go")
        self.compare_close = widgets.Button(description="Close compare", icon="times", layout={"display": "none"})
        self.compare_box = widgets.VBox()  # the open compare, above the cards
        self.compare_bar = widgets.VBox([widgets.HBox([self.compare_go, self.compare_close]), self.compare_box])

    def _wire(self) -> None:
        for control in (self.status_filter, self.model_filter, self.order, self.favourite_filter):
            control.observe(self._guard(self._on_filter), "value")
        self.tag_filter.observe(self._guard(self._on_tag), "value")
        self.search.observe(self._guard(self._on_search), "value")
        self.prev_button.on_click(self._guard(lambda _b: self.go_to(self.page - 1)))
        self.next_button.on_click(self._guard(lambda _b: self.go_to(self.page + 1)))
        self.refresh_button.on_click(self._guard(lambda _b: self.refresh_status()))
        self.reload_button.on_click(self._guard(lambda _b: self.reload(fresh_urls=True)))
        self.compare_go.on_click(self._guard(lambda _b: self.open_compare()))
        self.compare_close.on_click(self._guard(lambda _b: self.close_compare()))

    # -- queries ----------------------------------------------------------------------
    def query(self) -> RecordQuery:
        """The filters as a store query for the current page."""
        status = self.status_filter.value
        return RecordQuery(
            statuses=frozenset({Status(status)}) if status else None,
            model=self.model_filter.value or None,
            search=self.search.value.strip() or None,
            tags=self._tags,
            favourite=True if self.favourite_filter.value else None,
            limit=self.page_size,
            offset=self.page * self.page_size,
            newest_first=bool(self.order.value),
            diagnostic=False,
        )

    def _matches(self, record: GenerationRecord) -> bool:
        return self.query().matches(record)  # the store's own rules (casefold), not a second copy of them

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.page_size))

    @traitlets.validate("page")
    def _clamp_page(self, proposal: dict[str, Any]) -> int:
        return max(0, min(int(proposal["value"]), self.pages - 1))

    @traitlets.observe("total")
    def _page_still_exists(self, _change: dict[str, Any]) -> None:
        self.page = self.page  # validated again against the new page count

    @property
    def cards(self) -> list[RecordCard]:
        """The cards on screen, in the order they show (hidden spare cards left out)."""
        with self._lock:
            return list(self._cards.values())

    def card(self, record_id: str) -> RecordCard | None:
        return self._cards.get(record_id)

    def url_for(self, key: str) -> str:
        """A media key's browser URL, reused while the store's expiry leaves it time (`MediaUrls`)."""
        return self.media_urls.url(key)

    def source_prompt(self, record_id: str) -> str | None:
        return self._prompts.get(record_id)

    # -- loading ----------------------------------------------------------------------
    def _on_filter(self, _change: dict[str, Any]) -> None:
        self.page = 0
        self.reload()

    def _on_tag(self, _change: dict[str, Any]) -> None:
        """Filter by one tag, written as tags are stored; a tag that cannot exist says why."""
        text = self.tag_filter.value.strip()
        try:
            self._tags = frozenset(clean_tags([text])) if text else None
        except RequestInvalid:
            self._tags = None  # the page shows what the filters it can apply find; the toast says why
            raise
        finally:
            self._on_filter(_change)

    def _on_search(self, _change: dict[str, Any]) -> None:
        """Filter as the user types, once they pause (one query per pause, not per key)."""
        if self.search_delay_s <= 0:
            self._on_filter(_change)
            return
        with self._lock:
            if self._search_timer is not None:
                self._search_timer.cancel()
            self._search_timer = self._delivery.call_later(self.search_delay_s, self._on_filter, _change)

    def go_to(self, page: int) -> None:
        self.page = page
        self.reload()

    def reload(self, fresh_urls: bool = False) -> None:
        """Fetch the current page and show it; cards of records already shown are kept as they are.

        The count, the page and the cards change together, under the lock. Holding it while the
        service works is safe: events reach the grid through `Delivery`, so the service's thread
        never waits for this lock.
        """
        base = self.query()
        with self._lock:
            self.total = self.service.count_records(base)  # the page follows: past the end becomes the last one
            records = self.service.list_records(dataclasses.replace(base, offset=self.page * self.page_size))
            open_records = self.service.list_records(RecordQuery.open_jobs())
            for record in records:
                self._prompts[record.id] = record.prompt
            for record in records:
                for source_id in _sources(record):
                    if source_id not in self._prompts:
                        with contextlib.suppress(RecordNotFound):
                            self._prompts[source_id] = self.service.get(source_id).prompt
            self._refresh_urls(records, force=fresh_urls)
            self._open_ids = {r.id for r in open_records}
            self._place(records)
            self._update_controls()

    def _refresh_urls(self, records: list[GenerationRecord], force: bool = False) -> None:
        """Reload asks for every URL again; the cards take new URLs as they are updated (`RecordCard`),
        so only a card whose URL changed re-renders, and an open compare follows."""
        if force:
            self.media_urls.forget(key for record in records for key in _media_keys(record))
        if self.compare_view is not None:
            if force:
                self.media_urls.forget(self.compare_view.media_keys)
            self.compare_view.refresh_urls()

    def _make_card(self, record: GenerationRecord) -> RecordCard:
        return RecordCard(
            record,
            self.url_for,
            self._delete,
            self.remix,
            wrap=self._guard,
            parts=self._parts,
            on_retry=self.on_retry,
            source_prompt=self.source_prompt,
            on_extend=self.extend,
            on_edit=self.edit,
            on_reuse=self.on_reuse,
            on_favourite=self.set_favourite,
            budget_left=self.budget_left,
            on_compare=self.toggle_compare,
        )

    def _place(self, records: list[GenerationRecord]) -> None:
        """Lock held: show `records` in this order; shown cards stay, spare cards are reused, none rebuilt."""
        for record in records:  # URLs first: a lookup that raises leaves the page as it was, no widget half made
            if record.id not in self._cards:
                for key in _media_keys(record):
                    if key:
                        self.url_for(key)
        wanted = {r.id for r in records}
        freed = [card for rid, card in self._cards.items() if rid not in wanted]
        spare = freed + self._spare
        shown: dict[str, RecordCard] = {}
        added = False
        for record in records:
            card = self._cards.get(record.id)
            if card is not None:
                card.update(record)
            elif spare:
                card = spare.pop(0)
                card.show(record)
                card.set_compared(record.id in self._compare_ids)
            else:
                card = self._make_card(record)
                card.set_compared(record.id in self._compare_ids)
                self._slots.append(card)
                added = True
            shown[record.id] = card
        for position, card in enumerate(shown.values()):
            card.place(position)
        for card in spare:
            card.hide()
        self._cards, self._spare = shown, spare
        if added:  # appended at the end only: the cards already in the page keep their views
            self.grid.children = tuple(self._slots)

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
        try:
            kept = self.service.delete(record_id)
        except RecordNotFound:
            self.toasts.info("That video was already deleted elsewhere.")
        else:
            self.toasts.success("Deleted the video and its files" + (f" here; {kept}" if kept else ""))
        with self._lock:
            if self._remove_card(record_id):
                self.total = max(0, self.total - 1)
            self._open_ids.discard(record_id)
        self.reload()

    def remix(self, record_id: str, text: str) -> GenerationRecord | None:
        """Remix a record (a card's Start remix). The same remix again within seconds asks first."""
        return self._spend_once(
            record_id, ("remix", text.strip()), "Start remix", lambda: self.service.remix(record_id, text)
        )

    def extend(self, record_id: str, text: str, seconds: int) -> GenerationRecord | None:
        """Extend a record by `seconds` (a card's Start extension). The same again within seconds asks first."""
        return self._spend_once(
            record_id,
            ("extension", text.strip(), seconds),
            "Start extension",
            lambda: self.service.extend(record_id, text, seconds),
            price=lambda made: estimate_cost(made.model, made.size, seconds),  # an extension pays for what it adds
        )

    def edit(self, record_id: str, text: str) -> GenerationRecord | None:
        """Edit a record (a card's Start edit). The same edit again within seconds asks first."""
        return self._spend_once(
            record_id, ("edit", text.strip()), "Start edit", lambda: self.service.edit(record_id, text)
        )

    def _spend_once(
        self,
        record_id: str,
        request: tuple[object, ...],
        button: str,
        start: Callable[[], GenerationRecord],
        price: Callable[[GenerationRecord], Decimal] = lambda made: made.cost,
    ) -> GenerationRecord | None:
        """Start a paid job from a card, unless the very same one was started within the repeat window:
        then ask first (a double-click, or a second press while the first was starting).

        `request` is what was asked, its kind ("remix", "extension", "edit") first.
        """
        key = (record_id, *request)
        what = str(request[0])
        ago = self.recent.seconds_since(key)
        if ago is not None and self._confirm_key != key:
            self._confirm_key = key
            self.toasts.info(
                f"You started this same {what} {ago:.0f} s ago. Press {button} again to start another one."
            )
            return None
        self._confirm_key = None
        record = start()
        self.recent.started(key)
        source = short_prompt(self._prompts.get(record_id, ""))
        article = "an" if what[0] in "aeiou" else "a"
        self.toasts.success(f"Started {article} {what} of “{source}” ({format_cost(price(record))})")
        return record

    def budget_left(self) -> Decimal | None:
        """What may still be spent (None without a limit): a card's field says when Start would be refused."""
        remaining: Decimal | None = self.service.budget().remaining
        return remaining

    # -- compare ----------------------------------------------------------------------------------
    def toggle_compare(self, record_id: str) -> None:
        """A card's Compare: pick or unpick its video; two to four picked can be played in sync."""
        from .compare import MAX_COMPARED, MIN_COMPARED

        with self._lock:
            if record_id in self._compare_ids:
                self._compare_ids.remove(record_id)
            elif len(self._compare_ids) >= MAX_COMPARED:
                self.toasts.info(f"A compare plays at most {MAX_COMPARED} videos; unpick one first")
                return
            else:
                self._compare_ids.append(record_id)
            card = self._cards.get(record_id)
            if card is not None:
                card.set_compared(record_id in self._compare_ids)
            picked = len(self._compare_ids)
        self.compare_go.disabled = picked < MIN_COMPARED
        self.compare_go.description = f"Compare {picked} picked" if picked else "Compare picked"

    @property
    def compared(self) -> list[str]:
        return list(self._compare_ids)

    def open_compare(self) -> None:
        """Play the picked videos in sync, with their settings as a diff, above the cards."""
        from .compare import CompareView  # anywidget loads only when a compare is made

        view = CompareView(self.service, self.compared, media_urls=self.media_urls)
        self.close_compare()
        self.compare_view = view
        self.compare_box.children = (view,)
        self.compare_close.layout.display = ""

    def close_compare(self) -> None:
        if self.compare_view is not None:
            self.compare_view.close()
            self.compare_view = None
        self.compare_box.children = ()
        self.compare_close.layout.display = "none"

    def set_favourite(self, record_id: str, favourite: bool) -> GenerationRecord:
        """A card's star: mark or unmark the record, and show it at once."""
        record: GenerationRecord = self.service.set_favourite(record_id, favourite)
        with self._lock:
            card = self._cards.get(record_id)
            if card is not None:
                card.update(record)
        if self.favourite_filter.value and not favourite:  # it no longer belongs on this page
            self.reload()
        return record

    # -- events (the views' thread, handed over by `Delivery`) ----------------------------
    def _hand_over(self, event: ServiceEvent) -> None:
        """Service thread: queue the event for the views' thread; of a job's waiting progress, only the newest."""
        if event.kind == "progress" and event.record is not None:
            self._delivery.call_latest(("progress", event.record.id), self._on_event, event)
        else:
            self._delivery.call(self._on_event, event)

    def _on_event(self, event: ServiceEvent) -> None:
        record = event.record
        if record is None or event.kind == "log":
            return
        with self._lock:
            self._prompts.setdefault(record.id, record.prompt)
            if event.kind == "deleted" or record.status not in OPEN_STATUSES:
                self._open_ids.discard(record.id)
            else:
                self._open_ids.add(record.id)
            card = self._cards.get(record.id)
            if is_diagnostic(record) and event.kind != "deleted":
                if card is not None:  # marked after it was shown: a diagnostics check, not the person's video
                    self._remove_card(record.id)
                    self.total = max(0, self.total - 1)
                self._update_controls()
                return
            if event.kind == "deleted":
                if self._remove_card(record.id):
                    self.total = max(0, self.total - 1)
                elif self._matches(record):  # on another page, or a reload already left it out: ask the store
                    self.total = self.service.count_records(self.query())
            elif event.kind == "created":
                if card is None and self._matches(record):
                    if self.page == 0 and self.order.value:
                        self.total += 1
                        self._insert_first(record)
                    else:  # on another page, or a reload already counted it: ask the store
                        self.total = self.service.count_records(self.query())
            elif card is not None:
                card.update(record)
            if event.kind == "failed" and record.status == Status.FAILED:
                reason = record.error_message or "the provider gave no reason"
                retry = " Use Edit and retry on its card." if self.on_retry is not None else ""
                self.toasts.error(f"“{short_prompt(record.prompt)}” failed: {reason}.{retry}")
            self._update_controls()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until the service events handed over so far are on screen (plain Python, tests).

        In a kernel they show once the running cell ends (or while it awaits).
        """
        return self._delivery.flush(timeout)

    def _remove_card(self, record_id: str) -> bool:
        """Lock held: take a card off the page (hidden, kept as a spare); False when it was not shown."""
        card = self._cards.pop(record_id, None)
        if card is None:
            return False
        card.hide()
        self._spare.append(card)
        for position, shown in enumerate(self._cards.values()):
            shown.place(position)
        return True

    def _insert_first(self, record: GenerationRecord) -> None:
        """Lock held: a new record on page 1 goes on top; the last card falls off the page."""
        shown = [record, *(card.record for card in self._cards.values())][: self.page_size]
        self._place(shown)

    def close(self) -> None:
        if getattr(self, "_unsubscribe", None):
            self._unsubscribe()  # type: ignore[misc]
            self._unsubscribe = None
        delivery = getattr(self, "_delivery", None)
        if delivery is not None:  # nothing handed over still runs against closed cards
            delivery.close()
        timer = getattr(self, "_search_timer", None)
        if timer is not None:
            timer.cancel()
        if getattr(self, "compare_view", None) is not None:
            self.close_compare()
        if hasattr(self, "_parts"):  # absent when __init__ failed early
            with self._lock:
                cards, self._cards, self._spare, self._slots = list(self._slots), {}, [], []
                self.grid.children = ()
            for card in cards:  # each closes every widget it made, shown or not
                card.close_all()
            self._parts.close()
        close_tree(self)  # the controls

    # -- static view ------------------------------------------------------------------
    def _static_html(self) -> str:
        with self._lock:
            records = [card.record for card in self._cards.values()]
        footer = f"page {self.page + 1} of {self.pages} · {self.total:,} records"
        return history_table_html(records, self.url_for, title="soranb history", footer=footer)

    def _static_text(self) -> str:
        return f"HistoryGrid: {self.total} records, page {self.page + 1} of {self.pages}"

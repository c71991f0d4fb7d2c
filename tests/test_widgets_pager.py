"""The history's pager: `page` is a traitlet that only ever names a page that exists, and the count
("N records") and the pages come from one store query that leaves diagnostics records out."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable

import pytest
from test_store_contract import store  # noqa: F401 - the same stores the contract runs on
from widget_helpers import insert_records, make_records

from soranb.records import GenerationRecord
from soranb.request import GenerationRequest
from soranb.store.base import RecordQuery, Store
from soranb.widgets import HistoryGrid, Toasts

DIAGNOSTIC = {"diagnostic": True}


@pytest.fixture
def toasts():
    return Toasts(dismiss_after=None)


def test_page_is_clamped_whoever_sets_it(service, settings, toasts):
    insert_records(settings.data_dir, make_records(25))
    grid = HistoryGrid(service, toasts=toasts, page_size=10)
    assert grid.pages == 3
    grid.page = 99
    assert grid.page == 2
    grid.page = -4
    assert grid.page == 0
    grid.go_to(7)
    assert grid.page == 2 and "page 3 of 3" in grid.page_label.value and grid.next_button.disabled
    assert len(grid.cards) == 5
    grid.close()


def test_a_shrinking_history_moves_the_page_back_to_one_that_exists(service, settings, toasts):
    records = insert_records(settings.data_dir, make_records(25))
    grid = HistoryGrid(service, toasts=toasts, page_size=10)
    grid.go_to(2)
    for record in records[:10]:  # another process deletes the oldest ten: there are two pages now
        service.delete(record.id)
    grid.reload()
    assert grid.total == 15 and grid.page == 1
    assert "page 2 of 2" in grid.page_label.value and len(grid.cards) == 5
    grid.total = 0  # the observer validates the page again whenever the count changes
    assert grid.page == 0
    grid.close()


def test_the_count_and_the_pages_leave_diagnostics_out_alike(service, settings, toasts):
    mine = insert_records(settings.data_dir, make_records(13, prompt="mine"))
    insert_records(settings.data_dir, make_records(3, prompt="soranb diagnostics", metadata=DIAGNOSTIC))
    grid = HistoryGrid(service, toasts=toasts, page_size=13)
    assert grid.total == 13 and grid.pages == 1 and "13 records" in grid.page_label.value
    assert {c.record.id for c in grid.cards} == {r.id for r in mine}
    assert grid.next_button.disabled  # no second page of hidden records
    grid.close()


def test_a_full_page_of_newest_diagnostics_still_shows_the_persons_records(service, settings, toasts):
    records = make_records(4, prompt="clip")
    mine = insert_records(settings.data_dir, records[:2])
    insert_records(settings.data_dir, [r.evolve(metadata=DIAGNOSTIC) for r in records[2:]])  # the newest two
    grid = HistoryGrid(service, toasts=toasts, page_size=2)
    assert [c.record.id for c in grid.cards] == [r.id for r in reversed(mine)]
    grid.close()


async def _fill(target: Store) -> list[GenerationRecord]:
    records = make_records(4, prompt="fox")
    records[1] = records[1].evolve(metadata=DIAGNOSTIC)
    records[2] = records[2].evolve(metadata={"diagnostic": False, "other": 1})
    return [await target.insert(r) for r in records]


async def test_every_store_filters_diagnostics_the_same_way(store: Store):  # noqa: F811
    records = await _fill(store)
    hidden = RecordQuery(diagnostic=False, search="fox")
    assert await store.count(hidden) == 3
    assert [r.id for r in await store.query(hidden)] == [records[i].id for i in (3, 2, 0)]
    only = RecordQuery(diagnostic=True)
    assert await store.count(only) == 1 and [r.id for r in await store.query(only)] == [records[1].id]
    assert await store.count(RecordQuery()) == 4
    for query in (hidden, only):  # the views' own check of an event's record keeps the same rule
        assert [r.id for r in records if query.matches(r)] == [r.id for r in reversed(await store.query(query))]


def test_a_damaged_metadata_text_is_not_a_diagnostic_and_breaks_no_query(service, settings):
    _good, bad = insert_records(settings.data_dir, make_records(2))
    with sqlite3.connect(settings.data_dir / "soranb.db") as conn:  # a row damaged outside soranb
        conn.execute("update video_generations set metadata = '{not json' where id = ?", (bad.id,))
    assert service.count_records(RecordQuery(diagnostic=False)) == 2
    assert service.count_records(RecordQuery(diagnostic=True)) == 0


def test_an_event_that_arrives_after_a_reload_is_not_counted_twice(service, settings, toasts):
    """Events reach the grid after the service call that caused them: a reload may already count them."""
    records = insert_records(settings.data_dir, make_records(13))
    grid = HistoryGrid(service, toasts=toasts, page_size=12)
    grid.go_to(1)

    def reload_before_the_event(change: Callable[[], object]) -> None:
        gate = threading.Event()
        grid._delivery.call(gate.wait, 10)  # the views' thread is busy: the event waits behind this
        change()
        grid.reload()  # the page, the count and the cards as the store has them now
        gate.set()
        assert grid.flush()

    reload_before_the_event(lambda: service.generate(GenerationRequest("made while on page two")))
    assert grid.total == 14 and "14 records" in grid.page_label.value
    reload_before_the_event(lambda: service.delete(records[0].id))  # the oldest, on page two
    assert grid.total == 13 and "13 records" in grid.page_label.value

    card = grid.card(records[1].id)  # now the one card on page two
    card.delete_button.click()
    card.confirm_button.click()  # the card's own delete, then the service's "deleted" event
    assert grid.flush()
    assert grid.total == 12 == service.count_records()  # not 11
    grid.close()

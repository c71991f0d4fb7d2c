"""Diagnostics records are left out by one store query, in every store."""

from __future__ import annotations

import sqlite3

from test_store_contract import store  # noqa: F401 - the same stores the contract runs on
from widget_helpers import insert_records, make_records

from soranb.records import GenerationRecord
from soranb.store.base import RecordQuery, Store

DIAGNOSTIC = {"diagnostic": True}


async def _fill(target: Store) -> list[GenerationRecord]:
    records = make_records(4, prompt="fox")
    records[1] = records[1].evolve(metadata=DIAGNOSTIC)
    records[2] = records[2].evolve(metadata={"diagnostic": False, "other": 1})
    return [await target.insert(r) for r in records]


async def test_every_store_filters_diagnostics_the_same_way(store: Store):  # noqa: F811
    records = await _fill(store)
    hidden = RecordQuery(diagnostic=False, search="fox")
    assert await store.count(hidden) == 3
    assert [r.id for r in await store.list(hidden)] == [records[i].id for i in (3, 2, 0)]
    only = RecordQuery(diagnostic=True)
    assert await store.count(only) == 1 and [r.id for r in await store.list(only)] == [records[1].id]
    assert await store.count(RecordQuery()) == 4


def test_a_damaged_metadata_text_is_not_a_diagnostic_and_breaks_no_query(service, settings):
    _good, bad = insert_records(settings.data_dir, make_records(2))
    with sqlite3.connect(settings.data_dir / "soranb.db") as conn:  # a row damaged outside soranb
        conn.execute("update video_generations set metadata = '{not json' where id = ?", (bad.id,))
    assert service.count_records(RecordQuery(diagnostic=False)) == 2
    assert service.count_records(RecordQuery(diagnostic=True)) == 0

"""Batches, the budget and tags on a per-user Supabase project: each user's lines, spending and tags are their own."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Iterator
from decimal import Decimal

import pytest
from engine_helpers import FOX
from supabase_double import SupabaseDouble, reset_database

from soranb.config import Settings
from soranb.errors import BudgetExceeded
from soranb.service import VideoService
from soranb.store.base import RecordQuery
from soranb.store.supabase import SupabaseStore

pytestmark = pytest.mark.postgres


@pytest.fixture
def users(settings, tmp_path, supabase_databases) -> Iterator[dict[str, VideoService]]:
    conninfo = supabase_databases["per-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "1.00"}
    limited = Settings.from_env(env, dotenv=False)
    services, clients = {}, []
    for name in ("ada", "bob"):
        double.add_user(f"{name}@example.test", "correct horse")
        http = double.http_client()
        clients.append(http)
        store = SupabaseStore(
            double.url, double.anon_key, http_client=http, email=f"{name}@example.test", password="correct horse"
        )
        services[name] = VideoService(limited, store=store, autostart=False)
    try:
        yield services
    finally:
        for service in services.values():
            service.close()
        for http in clients:
            asyncio.run(http.aclose())


def test_the_same_batch_by_two_users_makes_each_their_own_once(users):
    ada, bob = users["ada"], users["bob"]
    requests = [dataclasses.replace(FOX, prompt=f"scene {i}") for i in range(2)]
    mine = ada.generate_many(requests, batch_key="storyboard")
    theirs = bob.generate_many(requests, batch_key="storyboard")  # same file, same key: never ada's rows
    assert {r.id for r in mine}.isdisjoint(r.id for r in theirs)
    assert [r.id for r in ada.generate_many(requests, batch_key="storyboard")] == [r.id for r in mine]
    assert ada.count_records() == bob.count_records() == 2

    assert ada.budget().spent == Decimal("0.80")  # each user's budget counts their own rows only
    with pytest.raises(BudgetExceeded, match=r"\$0\.20 over"):
        ada.generate(dataclasses.replace(FOX, prompt="one more"))
    assert ada.count_records() == 2

    ada.tag(mine[0].id, "keeper")
    assert [r.id for r in ada.list_records(RecordQuery(tags=frozenset({"keeper"})))] == [mine[0].id]
    assert bob.list_records(RecordQuery(tags=frozenset({"keeper"}))) == []

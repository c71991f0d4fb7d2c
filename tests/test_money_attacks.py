"""Attacks on "money is safe": a stranger holding a single-user project's anon key, another user on
the machine, a damaged or lost send ledger. Each test asserts what the owner would pay or lose.

Each was a hole when it was written (seen failing): the day's sum read from rows a stranger can change,
a lost or planted send ledger, an endless lease, a damaged ledger page, a store built in code that
skipped the data folder's check, and a deleted video giving its money back to the budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from engine_helpers import emulator_jobs, wait_at_provider
from supabase_double import SupabaseDouble, reset_database

from soranb.config import Settings
from soranb.errors import BudgetExceeded, ConfigError, SoranbError
from soranb.records import GenerationRecord, Status
from soranb.request import GenerationRequest
from soranb.service import VideoService
from soranb.store.supabase import SupabaseStore

SMALL = GenerationRequest("the owner's small fox", "sora-2", "1280x720", 4)  # $0.40
LONGER = GenerationRequest("the owner's longer fox", "sora-2", "1280x720", 8)  # $0.80


def _settle(service: VideoService, record_ids: list[str], steps: int = 400) -> None:
    """Poll (bounded) until the records are no longer open."""
    for _ in range(steps):
        if not any(service.get(rid).is_open for rid in record_ids):
            return
        service.poll_once()
        time.sleep(0.05)
    raise AssertionError(f"still open: {[service.get(rid) for rid in record_ids]}")


# -- a single-user project and a stranger with its anon key ----------------------------------------------


class _Project:
    """The owner's services on one single-user project, and a stranger's raw PostgREST calls."""

    def __init__(self, conninfo: str, tmp_path: Path) -> None:
        reset_database(conninfo)
        self.double = SupabaseDouble(conninfo, tmp_path / "objects")
        self.clients: list[httpx.AsyncClient] = []
        self.services: list[VideoService] = []

    def owner(self, settings: Settings, *, secret: bool = True) -> VideoService:
        from soranb.provenance import installation_secret

        self.clients.append(http := self.double.http_client())
        key = installation_secret(settings.data_dir) if secret else None
        store = SupabaseStore(self.double.url, self.double.anon_key, http_client=http, installation_secret=key)
        self.services.append(service := VideoService(settings, store=store, autostart=False))
        return service

    def stranger(self, method: str, record_id: str, body: dict[str, Any] | None = None) -> None:
        """What anyone holding the anon key can do to a row: PATCH any column, or DELETE it."""
        http = self.double.http_client()

        async def call() -> None:
            try:
                answer = await http.request(
                    method,
                    f"{self.double.url}/rest/v1/video_generations",
                    params={"id": f"eq.{record_id}"},
                    json=body,
                    headers={
                        "apikey": self.double.anon_key,
                        "Authorization": f"Bearer {self.double.anon_key}",
                        "Prefer": "return=minimal",
                    },
                )
                assert answer.status_code < 300, answer.text
            finally:
                await http.aclose()

        asyncio.run(call())

    def stranger_inserts(self, record: GenerationRecord) -> GenerationRecord:
        http = self.double.http_client()

        async def insert() -> GenerationRecord:
            store = SupabaseStore(self.double.url, self.double.anon_key, http_client=http)
            await store.open()
            try:
                return await store.insert(record)
            finally:
                await store.close()
                await http.aclose()

        return asyncio.run(insert())

    def close(self) -> None:
        for service in self.services:
            service.close()
        for http in self.clients:
            asyncio.run(http.aclose())


@pytest.fixture
def project(supabase_databases, tmp_path):
    made = _Project(supabase_databases["single-user"], tmp_path)
    yield made
    made.close()


_YESTERDAY = (datetime.now(UTC) - timedelta(days=1, hours=1)).isoformat()


@pytest.mark.postgres
@pytest.mark.parametrize(
    "tamper",
    [
        ("PATCH", {"status": "failed", "openai_job_id": None}),  # counts as never sent
        ("PATCH", {"created_at": _YESTERDAY}),  # out of today's sum
        ("PATCH", {"seconds": 4}),  # a cheaper video than was paid for
        ("DELETE", None),  # gone from the sum
    ],
    ids=["failed-without-job", "created-yesterday", "made-cheaper", "deleted"],
)
def test_a_stranger_cannot_lift_the_owners_daily_budget(settings, project, tamper) -> None:
    """Budget $1.00: the owner's 8 s video ($0.80) is made; a second one ($0.40) must be refused, whatever
    a stranger did to the first row meanwhile. The provider may hold no more than $1.00 of jobs."""
    owner = project.owner(settings.with_overrides(budget_usd=Decimal("1.00")))
    paid = owner.generate(LONGER)
    _settle(owner, [paid.id])
    method, body = tamper
    project.stranger(method, paid.id, body)
    with pytest.raises(BudgetExceeded):
        owner.generate(SMALL)
    assert len(emulator_jobs(owner)) == 1


@pytest.mark.postgres
@pytest.mark.parametrize("loss", ["missing", "empty"])
def test_a_lost_send_ledger_never_resends_a_finished_row_a_stranger_reopened(settings, project, loss) -> None:
    owner = project.owner(settings)
    done = owner.generate(SMALL)
    _settle(owner, [done.id])
    assert len(emulator_jobs(owner)) == 1
    finished = owner.get(done.id)
    owner.close()
    # the stranger reopens the signed row; its signature still matches (what decides the job is unchanged)
    stripped = {k: v for k, v in finished.metadata.items() if k != "create_attempted_at"}
    project.stranger("PATCH", done.id, {"status": "pending", "openai_job_id": None, "metadata": stripped})
    ledger = settings.data_dir / "sends.db"
    if loss == "missing":
        ledger.unlink()
    else:
        ledger.write_bytes(b"")
    again = project.owner(settings)  # the next kernel on the same data folder
    for _ in range(3):
        again.poll_once()
    assert len(emulator_jobs(again)) == 1  # the owner paid once for this video


@pytest.mark.postgres
def test_a_strangers_endless_lease_does_not_hold_a_paid_video_hostage(settings, project) -> None:
    owner = project.owner(settings)
    paid = owner.generate(SMALL)
    assert owner.get(paid.id).status == Status.PROCESSING
    far = "2999-01-01T00:00:00+00:00"
    project.stranger("PATCH", paid.id, {"lease_owner": "a-busy-kernel-elsewhere", "lease_expires_at": far})
    wait_at_provider(owner, paid.id)
    for _ in range(5):  # one step downloads a finished video
        owner.poll_once()
    assert owner.get(paid.id).status == Status.COMPLETED


# -- another user on this machine, and the send ledger's file ----------------------------------------


def _plant_ledger_entry(data_dir: Path, record_id: str) -> None:
    """What another user who can write sends.db adds: a 'stored' entry, with no fingerprint to check."""
    with sqlite3.connect(data_dir / "sends.db") as conn:
        conn.execute(
            "insert into sends (record_id, state, fingerprint, updated_at) values (?, 'stored', NULL, ?)",
            (record_id, time.time()),
        )


def test_a_send_ledger_other_users_can_write_is_refused(settings) -> None:
    with VideoService(settings, autostart=False) as service:  # the folder, its key and its ledger, as soranb makes them
        service.generate(SMALL)
    ledger = settings.data_dir / "sends.db"
    assert ledger.exists()
    os.chmod(settings.data_dir, 0o755)  # not writable by others: allowed
    os.chmod(ledger, 0o666)  # but the ledger is
    with pytest.raises(ConfigError, match=r"sends\.db"):
        VideoService(settings, autostart=False).close()


@pytest.mark.postgres
def test_a_planted_ledger_entry_never_sends_a_strangers_row(settings, project) -> None:
    owner = project.owner(settings, secret=False)  # SupabaseStore(url, anon_key), as the docs show
    row = GenerationRecord(prompt="on the owner's bill", model="sora-2-pro", size="1792x1024", seconds=12)
    planted = project.stranger_inserts(row)
    _plant_ledger_entry(settings.data_dir, planted.id)
    for _ in range(3):
        owner.poll_once()
    assert emulator_jobs(owner) == []


@pytest.mark.postgres
def test_a_store_built_in_code_does_not_use_a_data_folder_anyone_can_write(settings, project) -> None:
    settings.data_dir.mkdir(parents=True)
    os.chmod(settings.data_dir, 0o777)
    with pytest.raises(ConfigError, match="data folder"):
        project.owner(settings, secret=False)


@pytest.fixture
def damaged_ledger(settings):
    """A service with one job running and one waiting for a slot, then its sends.db damaged on the
    page that holds the entries (the schema still reads, so the ledger opens)."""
    settings = settings.with_overrides(max_concurrent_jobs=1)
    first = VideoService(settings, autostart=False)
    running = first.generate(SMALL)
    first.generate(GenerationRequest("waits for a slot", "sora-2", "1280x720", 4))
    first.close()
    ledger = settings.data_dir / "sends.db"
    with sqlite3.connect(ledger) as conn:
        page = conn.execute("pragma page_size").fetchone()[0]
        root = conn.execute("select rootpage from sqlite_master where name = 'sends'").fetchone()[0]
    data = bytearray(ledger.read_bytes())
    data[(root - 1) * page : root * page] = b"\xff" * page
    ledger.write_bytes(bytes(data))
    service = VideoService(settings, autostart=False)
    yield service, running
    service.close()


def test_a_damaged_send_ledger_is_a_soranb_error_saying_which_file(damaged_ledger) -> None:
    service, _running = damaged_ledger
    with pytest.raises(SoranbError, match=r"sends\.db"):
        service.generate(SMALL)
    assert len(emulator_jobs(service)) == 1  # nothing more was sent


def test_a_damaged_send_ledger_does_not_stop_a_paid_video_from_arriving(damaged_ledger) -> None:
    service, running = damaged_ledger
    wait_at_provider(service, running.id)
    for _ in range(5):
        # saying the ledger is damaged is fine; leaving the paid video at the provider is not
        with contextlib.suppress(SoranbError):
            service.poll_once()
    assert service.get(running.id).status == Status.COMPLETED
    assert len(emulator_jobs(service)) == 1  # and the waiting record was not sent without its ledger


# -- the owner's own deletions ---------------------------------------------------------------------------


def test_deleting_a_paid_video_does_not_give_its_money_back_to_the_budget(make_service, settings) -> None:
    service = make_service(using=settings.with_overrides(budget_usd=Decimal("1.00")))
    paid = service.generate(LONGER)
    _settle(service, [paid.id])
    service.delete(paid.id)
    with pytest.raises(BudgetExceeded):
        service.generate(SMALL)
    assert emulator_jobs(service) == []  # the deleted video's job went with it; no second one was made

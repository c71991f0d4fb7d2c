"""The send ledger: a record is sent at most once per intent, whatever its row says later."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path

from engine_helpers import FOX, drive, emulator_jobs

from soranb.config import Settings
from soranb.provenance import sign
from soranb.records import GenerationRecord, Status
from soranb.sends import SendLedger, Verdict

SECRET = b"this installation"


def _record(prompt: str = "a fox") -> GenerationRecord:
    return GenerationRecord(prompt=prompt, model="sora-2", size="1280x720", seconds=4)


def test_two_processes_beginning_one_record_at_once_get_one_first_send(tmp_path: Path) -> None:
    """Two ledgers on one file (two processes) ask at the same instant, twenty times: each time one
    may send and the other must look the job up first."""
    for trial in range(20):
        record = _record(f"fox {trial}")
        asyncio.run(SendLedger(tmp_path, SECRET).stored(record, "local"))
        barrier = threading.Barrier(2)
        verdicts: list[str] = []

        def begin(
            record: GenerationRecord = record, barrier: threading.Barrier = barrier, verdicts: list[str] = verdicts
        ) -> None:
            ledger = SendLedger(tmp_path, SECRET)
            asyncio.run(ledger.judge(record, vouched=False))  # connected before the start
            barrier.wait(timeout=10)
            verdicts.append(asyncio.run(ledger.begin(record, vouched=False)).verdict.value)

        threads = [threading.Thread(target=begin) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert sorted(verdicts) == ["first", "retry"], trial


def test_a_record_with_a_job_or_refused_is_never_sent_again(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path, SECRET)
    made, refused = _record(), _record(prompt="refused")

    async def go() -> None:
        for record in (made, refused):
            await ledger.stored(record, "local")
            assert (await ledger.begin(record, vouched=False)).verdict == Verdict.FIRST
        await ledger.created(made.id, "video_1")
        await ledger.ended(refused.id)
        again = await ledger.begin(made, vouched=True)
        assert (again.verdict, again.job_id) == (Verdict.DONE, "video_1")
        assert (await ledger.begin(refused, vouched=True)).verdict == Verdict.DONE

    asyncio.run(go())


def test_a_record_changed_since_it_was_stored_is_not_sent(tmp_path: Path) -> None:
    ledger = SendLedger(tmp_path, SECRET)
    record = _record()

    async def go() -> None:
        await ledger.stored(record, "local")
        bigger = record.evolve(model="sora-2-pro", size="1792x1024", seconds=12, updated_at=record.updated_at)
        assert (await ledger.begin(bigger, vouched=True)).verdict == Verdict.CHANGED

    asyncio.run(go())


def test_rows_the_ledger_never_saw_are_sent_only_where_the_store_vouches_or_once_adopted(tmp_path: Path) -> None:
    """On a shared project the pending rows this installation signed before the ledger existed are
    taken over once; a row that turns pending later (a stranger's flip of an old finished row) is not."""
    ledger = SendLedger(tmp_path, SECRET)
    legacy = sign(SECRET, _record(prompt="queued before the upgrade"))
    strangers = _record(prompt="a stranger's")
    later = sign(SECRET, _record(prompt="finished long ago, made pending after the upgrade"))

    async def go() -> None:
        assert (await ledger.judge(strangers, vouched=True)).verdict == Verdict.FIRST  # local or per-user
        await ledger.adopt("supabase (example)", [legacy, strangers])
        await ledger.adopt("supabase (example)", [later])  # once per store: a second look adopts nothing
        assert (await ledger.judge(legacy, vouched=False)).verdict == Verdict.FIRST
        assert (await ledger.judge(strangers, vouched=False)).verdict == Verdict.FOREIGN
        assert (await ledger.judge(later, vouched=False)).verdict == Verdict.FOREIGN

    asyncio.run(go())


def test_a_finished_local_record_made_pending_again_is_an_error_not_a_second_video(make_service, settings) -> None:
    """Budget $0.40: one 4 s video. Its row is edited back to pending in soranb.db (by hand, or a
    script): the service makes no second job and the card says what happened."""
    env = {"SORANB_DATA_DIR": str(settings.data_dir), "SORANB_EMULATOR_SPEED": "240", "SORANB_BUDGET_USD": "0.40"}
    service = make_service(using=Settings.from_env(env, dotenv=False))
    record = service.generate(FOX)
    drive(service)
    assert service.get(record.id).status == Status.COMPLETED
    with sqlite3.connect(settings.data_dir / "soranb.db") as db:
        db.execute("update video_generations set status = 'pending', openai_job_id = null where id = ?", (record.id,))
    drive(service)
    assert len(emulator_jobs(service)) == 1
    shown = service.get(record.id)
    assert shown.status == Status.FAILED and "changed outside soranb" in (shown.error_message or "")


def test_a_generate_that_reports_failure_leaves_nothing_to_be_sent_later(service, monkeypatch) -> None:
    """The store fails right after the record is stored: `generate` raises, and the record it stored is
    ended, not left pending for a poller to send (and bill) after the user was told it failed."""
    import pytest

    from soranb.errors import StoreUnavailable

    async def broken_count(query: object) -> int:
        raise StoreUnavailable("the store went away")

    monkeypatch.setattr(service.store.inner, "count", broken_count)
    with pytest.raises(StoreUnavailable):
        service.generate(FOX)
    monkeypatch.undo()
    (record,) = service.list_records()
    assert record.status == Status.FAILED and "not sent" in (record.error_message or "")
    drive(service)
    assert emulator_jobs(service) == []


def test_a_record_whose_job_was_made_but_never_noted_follows_that_job(service, settings) -> None:
    """soranb stopped between the create's answer and noting it: the row is pending without a job id.
    The next poll follows the job the ledger knows (free) instead of making (and billing) another."""
    record = service.generate(FOX)
    (job,) = emulator_jobs(service)
    with sqlite3.connect(settings.data_dir / "soranb.db") as db:
        db.execute("update video_generations set status = 'pending', openai_job_id = null where id = ?", (record.id,))
    drive(service)
    assert len(emulator_jobs(service)) == 1
    done = service.get(record.id)
    assert done.status == Status.COMPLETED and done.openai_job_id == job.id

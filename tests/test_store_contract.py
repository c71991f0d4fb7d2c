"""One contract every store keeps, run against each: the local store and Supabase.

Supabase runs through supabase-py against the test double on a real PostgreSQL, twice:
single-user (the project's anon key, permissive policies, public buckets) and per-user
(all migrations, signed in with email and password, private buckets, RLS deciding).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from supabase_double import SupabaseDouble, reset_database

from soranb.errors import RecordConflict, RecordNotFound
from soranb.records import GenerationRecord, Status
from soranb.store.base import RecordQuery, Store, media_key

STORES = ["local", "supabase-single-user", "supabase-per-user"]
T0 = datetime(2026, 1, 10, 9, 0, tzinfo=UTC)


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    kind: str = request.param
    if kind == "local":
        from soranb.store.local import LocalStore

        local = LocalStore(tmp_path / "data")
        await local.open()
        try:
            yield local
        finally:
            await local.close()
        return

    request.applymarker(pytest.mark.postgres)
    from soranb.store.supabase import SupabaseStore

    variant = kind.removeprefix("supabase-")
    conninfo = request.getfixturevalue("supabase_databases")[variant]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    http = double.http_client()
    credentials: dict[str, Any] = {}
    if variant == "per-user":
        double.add_user("ada@example.test", "correct horse")
        credentials = {"email": "ada@example.test", "password": "correct horse"}
    remote = SupabaseStore(double.url, double.anon_key, http_client=http, **credentials)
    await remote.open()
    try:
        yield remote
    finally:
        await remote.close()
        await http.aclose()


def make(prompt: str = "a red fox in snow", *, minutes: int = 0, **fields: object) -> GenerationRecord:
    when = T0 + timedelta(minutes=minutes)
    return GenerationRecord(
        prompt=prompt,
        model=str(fields.pop("model", "sora-2")),
        size="1280x720",
        seconds=8,
        created_at=when,
        updated_at=when,
        **fields,  # type: ignore[arg-type]
    )


def write_file(path: Path, size: int) -> str:
    data = os.urandom(size)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


# -- records ----------------------------------------------------------------------------------------


async def test_insert_then_get_returns_every_field(store: Store) -> None:
    record = make(
        'Unicode «été» 東京 🎬 <script>alert("x")</script> it\'s "quoted" & 100%_done\nsecond line',
        status=Status.PROCESSING,
        progress=42,
        openai_job_id="video_" + "a" * 48,
        video_key="videos/x.mp4",
        thumbnail_key="thumbnails/x.webp",
        image_key="images/x.png",
        image_filename='my "pic" <1>.png',
        error_message=None,
        remixed_from="2f1b7a4e-0000-4000-8000-000000000000",
        metadata={"a": [1, 2.5, None, True], "nested": {"ü": "ß"}, "empty": {}},
    )
    await store.insert(record)
    assert await store.get(record.id) == record


async def test_get_missing_raises_record_not_found(store: Store) -> None:
    with pytest.raises(RecordNotFound):
        await store.get("00000000-0000-4000-8000-000000000000")
    with pytest.raises(RecordNotFound):
        await store.get("not-a-uuid")


async def test_duplicate_insert_is_a_conflict(store: Store) -> None:
    record = make()
    await store.insert(record)
    with pytest.raises(RecordConflict):
        await store.insert(record)


async def test_update_changes_fields_and_bumps_updated_at(store: Store) -> None:
    record = await store.insert(make())
    updated = await store.update(
        record.id, {"status": Status.PROCESSING, "progress": 10, "openai_job_id": "video_1", "metadata": {"k": 1}}
    )
    assert (updated.status, updated.progress, updated.openai_job_id) == (Status.PROCESSING, 10, "video_1")
    assert updated.metadata == {"k": 1}
    assert updated.updated_at > record.updated_at
    assert updated.created_at == record.created_at
    assert await store.get(record.id) == updated


async def test_update_compare_and_set(store: Store) -> None:
    record = await store.insert(make(status=Status.PROCESSING))
    with pytest.raises(RecordConflict):
        await store.update(record.id, {"status": Status.FAILED, "progress": 99}, expect_status=Status.PENDING)
    assert await store.get(record.id) == record  # nothing changed
    done = await store.update(
        record.id, {"status": Status.COMPLETED, "progress": 100}, expect_status=[Status.PENDING, Status.PROCESSING]
    )
    assert done.status == Status.COMPLETED
    with pytest.raises(RecordConflict):
        await store.update(record.id, {"progress": 1}, expect_status=Status.PROCESSING)


async def test_update_missing_or_unknown_field(store: Store) -> None:
    with pytest.raises(RecordNotFound):
        await store.update("00000000-0000-4000-8000-000000000000", {"progress": 1})
    with pytest.raises(RecordNotFound):
        await store.update("00000000-0000-4000-8000-000000000000", {"progress": 1}, expect_status=Status.PENDING)
    record = await store.insert(make())
    with pytest.raises(ValueError):
        await store.update(record.id, {"no_such_field": 1})


# -- listing ------------------------------------------------------------------------------------------


@pytest.fixture
async def history(store: Store) -> list[GenerationRecord]:
    records = [
        make("A Red Fox", minutes=0, status=Status.COMPLETED),
        make("100% real footage", minutes=1, status=Status.PENDING),
        make("100 real footage", minutes=2, status=Status.PROCESSING, model="sora-2-pro"),
        make("snake_case river", minutes=3, status=Status.FAILED),
        make("snakeXcase river", minutes=4, status=Status.PROCESSING),
        make("a*b star", minutes=5, status=Status.CANCELLED, model="sora-2-pro"),
        make("ab star", minutes=6, status=Status.PENDING),
    ]
    for record in records:
        await store.insert(record)
    return records


async def test_list_newest_first_with_paging(store: Store, history: list[GenerationRecord]) -> None:
    newest = [r.id for r in reversed(history)]
    assert [r.id for r in await store.query(RecordQuery())] == newest
    assert [r.id for r in await store.query(RecordQuery(limit=3))] == newest[:3]
    assert [r.id for r in await store.query(RecordQuery(limit=3, offset=3))] == newest[3:6]
    assert [r.id for r in await store.query(RecordQuery(limit=3, offset=6))] == newest[6:]
    assert await store.query(RecordQuery(offset=50)) == []
    oldest = await store.query(RecordQuery(newest_first=False, limit=2))
    assert [r.id for r in oldest] == [history[0].id, history[1].id]


async def test_list_and_count_filters(store: Store, history: list[GenerationRecord]) -> None:
    async def prompts(**kwargs: object) -> list[str]:
        query = RecordQuery(newest_first=False, **kwargs)  # type: ignore[arg-type]
        found = [r.prompt for r in await store.query(query)]
        assert await store.count(RecordQuery(limit=1, offset=1, **kwargs)) == len(found)  # type: ignore[arg-type]
        return found

    assert await prompts(statuses=frozenset({Status.PROCESSING})) == ["100 real footage", "snakeXcase river"]
    assert await prompts(model="sora-2-pro") == ["100 real footage", "a*b star"]
    assert await prompts(model="sora-2-pro", statuses=frozenset({Status.CANCELLED})) == ["a*b star"]
    assert await prompts(search="red FOX") == ["A Red Fox"]
    assert await prompts(search="%") == ["100% real footage"]
    assert await prompts(search="e_c") == ["snake_case river"]
    assert await prompts(search="*") == ["a*b star"]
    assert await prompts(search="no such thing") == []
    assert await store.count(RecordQuery()) == len(history)


async def test_open_jobs_oldest_first(store: Store, history: list[GenerationRecord]) -> None:
    open_jobs = await store.query(RecordQuery.open_jobs())
    assert [r.prompt for r in open_jobs] == ["100% real footage", "100 real footage", "snakeXcase river", "ab star"]
    assert all(r.is_open for r in open_jobs)


# -- leases ----------------------------------------------------------------------------------------


async def test_lease_claim_refuse_extend_release(store: Store) -> None:
    record = await store.insert(make())
    minute = timedelta(minutes=1)
    assert await store.claim(record.id, "service-a", minute)
    assert not await store.claim(record.id, "service-b", minute)
    assert await store.claim(record.id, "service-a", minute)  # re-claim extends
    await store.release(record.id, "service-b")  # not the holder: no-op
    assert not await store.claim(record.id, "service-b", minute)
    await store.release(record.id, "service-a")
    assert await store.claim(record.id, "service-b", minute)
    assert (await store.get(record.id)).updated_at == record.updated_at  # leases are not edits


async def test_lease_expires(store: Store) -> None:
    record = await store.insert(make())
    assert await store.claim(record.id, "service-a", timedelta(milliseconds=1))
    await asyncio.sleep(0.05)
    assert await store.claim(record.id, "service-b", timedelta(minutes=1))
    assert not await store.claim(record.id, "service-a", timedelta(minutes=1))


async def test_lease_owner_with_filter_syntax_characters(store: Store) -> None:
    record = await store.insert(make())
    odd = 'host,1.(pid):2 "x"\\'
    assert await store.claim(record.id, odd, timedelta(minutes=1))
    assert await store.claim(record.id, odd, timedelta(minutes=1))
    assert not await store.claim(record.id, "host", timedelta(minutes=1))


async def test_claim_checks_the_status_in_the_same_statement(store: Store) -> None:
    record = await store.insert(make())  # pending
    minute = timedelta(minutes=1)
    assert not await store.claim(record.id, "service-a", minute, expect_status=Status.PROCESSING)
    assert await store.claim(record.id, "service-a", minute, expect_status=Status.PENDING)
    await store.release(record.id, "service-a")
    await store.update(record.id, {"status": Status.PROCESSING, "openai_job_id": "video_1"})
    assert not await store.claim(record.id, "service-b", minute, expect_status=Status.PENDING)


def _gone_process_owner() -> str:
    """A lease owner naming a process of this machine that has exited."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return f"{socket.gethostname()}:{child.pid}:deadbeef"


async def test_a_lease_held_by_a_process_that_is_gone_is_taken_over_at_once(store: Store) -> None:
    record = await store.insert(make())
    assert await store.claim(record.id, _gone_process_owner(), timedelta(hours=1))
    assert await store.claim(record.id, "service-b", timedelta(minutes=1))
    # a live holder on this machine (this very process), or one on another machine, keeps its lease
    live = f"{socket.gethostname()}:{os.getpid()}:cafe0000"
    other = await store.insert(make())
    assert await store.claim(other.id, live, timedelta(hours=1))
    assert not await store.claim(other.id, "service-b", timedelta(minutes=1))
    remote = await store.insert(make())
    assert await store.claim(remote.id, "another-host:1:cafe0000", timedelta(hours=1))
    assert not await store.claim(remote.id, "service-b", timedelta(minutes=1))


async def test_claim_missing_record_is_refused(store: Store) -> None:
    assert not await store.claim("00000000-0000-4000-8000-000000000000", "a", timedelta(minutes=1))


# -- media ------------------------------------------------------------------------------------------


async def test_media_round_trip(store: Store, tmp_path: Path) -> None:
    record = await store.insert(make())
    src = tmp_path / "thumb.webp"
    digest = write_file(src, 2048)
    key = media_key("thumbnails", record.id)
    await store.put_media(key, src, "image/webp")
    assert (await store.media_url(key)).startswith(("file:", "http"))
    out = await store.fetch_media(key, tmp_path / "out.webp")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest


async def test_local_path_is_the_stored_file_only_where_it_is_on_this_machine(store: Store, tmp_path: Path) -> None:
    """Players and reports use `local_path` to show a file directly; a remote store answers None."""
    record = await store.insert(make())
    src = tmp_path / "video.mp4"
    digest = write_file(src, 4096)
    key = media_key("videos", record.id)
    await store.put_media(key, src, "video/mp4")
    path = store.local_path(key)
    if store.name == "local":
        assert path is not None and hashlib.sha256(path.read_bytes()).hexdigest() == digest
        with pytest.raises(ValueError):
            store.local_path("../soranb.db")  # never a path out of the media folder
    else:
        assert path is None


async def test_large_media_streams_through(store: Store, tmp_path: Path) -> None:
    record = await store.insert(make())
    src = tmp_path / "video.mp4"
    digest = write_file(src, 6 * 1024 * 1024 + 17)
    key = media_key("videos", record.id)
    await store.put_media(key, src, "video/mp4")
    # a retried upload of the same key overwrites, never fails
    src2 = tmp_path / "video2.mp4"
    digest = write_file(src2, 5 * 1024 * 1024 + 3)
    await store.put_media(key, src2, "video/mp4")
    out = await store.fetch_media(key, tmp_path / "copy.mp4")
    assert hashlib.sha256(out.read_bytes()).hexdigest() == digest


async def test_missing_media(store: Store, tmp_path: Path) -> None:
    key = media_key("videos", "00000000-0000-4000-8000-000000000000")
    with pytest.raises(RecordNotFound):
        await store.fetch_media(key, tmp_path / "nothing.mp4")
    assert not (tmp_path / "nothing.mp4").exists()
    await store.delete_media(key)  # not an error


async def test_delete_removes_row_and_media(store: Store, tmp_path: Path) -> None:
    record = await store.insert(make())
    keys = {
        "video_key": media_key("videos", record.id),
        "thumbnail_key": media_key("thumbnails", record.id),
        "image_key": media_key("images", record.id, ".png"),
    }
    for kind, key in keys.items():
        src = tmp_path / kind
        write_file(src, 1000)
        await store.put_media(key, src, {"video_key": "video/mp4", "image_key": "image/png"}.get(kind, "image/webp"))
    await store.update(record.id, keys)
    other = await store.insert(make("keep me"))

    await store.delete(record.id)
    with pytest.raises(RecordNotFound):
        await store.get(record.id)
    for key in keys.values():
        with pytest.raises(RecordNotFound):
            await store.fetch_media(key, tmp_path / "gone")
    assert [r.id for r in await store.query(RecordQuery())] == [other.id]
    with pytest.raises(RecordNotFound):
        await store.delete(record.id)


async def test_check_schema_is_clean(store: Store) -> None:
    assert await store.check_schema() == []


# -- filters for the budget, batches and reports (issue 13) ----------------------------------------


async def test_since_and_ids_filters(store: Store, history: list[GenerationRecord]) -> None:
    since = T0 + timedelta(minutes=5)
    assert [r.prompt for r in await store.query(RecordQuery(since=since, newest_first=False))] == [
        "a*b star",
        "ab star",
    ]
    assert await store.count(RecordQuery(since=since.astimezone(timezone(timedelta(hours=2))))) == 2
    wanted = frozenset({history[1].id, history[3].id, "00000000-0000-4000-8000-00000000dead", "not-a-uuid"})
    assert {r.id for r in await store.query(RecordQuery(ids=wanted))} == {history[1].id, history[3].id}
    assert await store.query(RecordQuery(ids=frozenset())) == []


async def test_tags_favourite_and_note_round_trip_and_filter(store: Store) -> None:
    plain = await store.insert(make("plain", minutes=0))
    assert (plain.tags, plain.favourite, plain.note) == ((), False, None)
    odd = 'night shots: 2/3 #best, "quoted" {braced} <b>'
    fox = await store.insert(make("fox", minutes=1, tags=("fox", odd), favourite=True, note='<i>keep</i> "this"'))
    assert await store.get(fox.id) == fox
    wolf = await store.insert(make("wolf", minutes=2, tags=("wolf", "night shots")))
    changed = await store.update(wolf.id, {"tags": ("wolf", "night"), "favourite": True, "note": "good light"})
    assert (changed.tags, changed.favourite, changed.note) == (("wolf", "night"), True, "good light")

    async def prompts(**kwargs: object) -> list[str]:
        query = RecordQuery(newest_first=False, **kwargs)  # type: ignore[arg-type]
        found = [r.prompt for r in await store.query(query)]
        assert await store.count(query) == len(found)
        return found

    assert await prompts(tags=frozenset({"fox"})) == ["fox"]
    assert await prompts(tags=frozenset({odd})) == ["fox"]
    assert await prompts(tags=frozenset({"night"})) == ["wolf"]
    assert await prompts(tags=frozenset({"night shots"})) == []  # whole tags only, never a substring
    assert await prompts(tags=frozenset({"fox", "wolf"})) == []  # every tag must be there
    assert await prompts(favourite=True) == ["fox", "wolf"]
    assert await prompts(favourite=False) == ["plain"]
    assert await prompts(favourite=True, tags=frozenset({"wolf"}), statuses=frozenset({Status.PENDING})) == ["wolf"]

"""What only the Supabase store does: user folders, URLs, round trips, limits, diagnostics, errors.

The shared behaviour is in test_store_contract.py; these run supabase-py against the double.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from postgres import PostgresServer, migration_files
from supabase_double import SupabaseDouble, reset_database

from soranb.errors import (
    ConfigError,
    RecordConflict,
    RecordNotFound,
    StoreCorrupt,
    StoreUnavailable,
    StoreWriteFailed,
)
from soranb.records import GenerationRecord, Status
from soranb.store.base import RecordQuery, media_key
from soranb.store.supabase import MIGRATIONS, SupabaseStore

pytestmark = pytest.mark.postgres

PASSWORD = "correct horse battery"
StoreFactory = Callable[..., Any]


def make(prompt: str = "a fox", **fields: Any) -> GenerationRecord:
    return GenerationRecord(prompt=prompt, model="sora-2", size="1280x720", seconds=4, **fields)


@pytest.fixture
def double_for(tmp_path: Path, supabase_databases: dict[str, str]) -> Iterator[Callable[[str], SupabaseDouble]]:
    made: list[str] = []

    def factory(variant: str) -> SupabaseDouble:
        conninfo = supabase_databases[variant]
        if conninfo not in made:
            reset_database(conninfo)
            made.append(conninfo)
        return SupabaseDouble(conninfo, tmp_path / f"objects-{variant}")

    yield factory


@asynccontextmanager
async def opened(double: SupabaseDouble, key: str | None = None, **kwargs: Any) -> AsyncIterator[SupabaseStore]:
    http = double.http_client()
    store = SupabaseStore(double.url, key or double.anon_key, http_client=http, **kwargs)
    try:
        await store.open()
        yield store
    finally:
        await store.close()
        await http.aclose()


def _sql(double: SupabaseDouble, query: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with psycopg.connect(double.conninfo) as conn:
        return conn.execute(query, params).fetchall()  # type: ignore[arg-type]


def _file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


# -- users, folders and URLs ---------------------------------------------------------------------------


async def test_per_user_rows_and_objects_belong_to_the_signed_in_user(
    double_for: Callable[[str], SupabaseDouble], tmp_path: Path
) -> None:
    double = double_for("per-user")
    uid = double.add_user("ada@example.test", PASSWORD)
    async with opened(double, email="ada@example.test", password=PASSWORD) as store:
        assert store.user_id == uid
        assert store.public_buckets is False
        record = await store.insert(make())
        key = media_key("videos", record.id)
        data = _file(tmp_path / "v.mp4", 4096)
        await store.put_media(key, tmp_path / "v.mp4", "video/mp4")

        assert _sql(double, "select user_id::text from public.video_generations") == [(uid,)]
        assert _sql(double, "select bucket_id, name, metadata->>'mimetype' from storage.objects") == [
            ("video_files", f"{uid}/videos/{record.id}.mp4", "video/mp4")
        ]
        url = await store.media_url(key)
        assert "/storage/v1/object/sign/video_files/" in url
        signs = len([r for r in double.requests if "/object/sign/" in r])
        assert await store.media_url(key) == url  # cached, no new signature
        assert len([r for r in double.requests if "/object/sign/" in r]) == signs
        async with double.http_client() as browser:
            answer = await browser.get(url)
        assert answer.status_code == 200
        assert answer.content == data
        assert answer.headers["content-type"] == "video/mp4"


async def test_single_user_media_has_public_urls(double_for: Callable[[str], SupabaseDouble], tmp_path: Path) -> None:
    double = double_for("single-user")
    async with opened(double) as store:
        assert store.user_id is None
        assert store.public_buckets is True
        record = await store.insert(make())
        key = media_key("images", record.id, ".png")
        data = _file(tmp_path / "i.png", 300)
        await store.put_media(key, tmp_path / "i.png", "image/png")
        url = await store.media_url(key)
        assert url == f"{double.url}/storage/v1/object/public/image_files/images/{record.id}.png"
        async with double.http_client() as browser:
            assert (await browser.get(url)).content == data
        assert await store.media_url("https://cdn.example/old.mp4") == "https://cdn.example/old.mp4"


async def test_users_cannot_reach_each_others_records(
    double_for: Callable[[str], SupabaseDouble], tmp_path: Path
) -> None:
    double = double_for("per-user")
    double.add_user("ada@example.test", PASSWORD)
    bob = double.add_user("bob@example.test", PASSWORD)
    async with opened(double, email="ada@example.test", password=PASSWORD) as ada:
        record = await ada.insert(make("ada's"))
        _file(tmp_path / "v.mp4", 100)
        await ada.put_media(media_key("videos", record.id), tmp_path / "v.mp4", "video/mp4")
    async with opened(double, access_token=double.user_token(bob)) as bob_store:
        assert bob_store.user_id == bob
        assert await bob_store.query(RecordQuery()) == []
        assert await bob_store.count(RecordQuery()) == 0
        with pytest.raises(RecordNotFound):
            await bob_store.get(record.id)
        with pytest.raises(RecordNotFound):
            await bob_store.update(record.id, {"prompt": "bob's now"})
        with pytest.raises(RecordNotFound):
            await bob_store.delete(record.id)
        assert not await bob_store.claim(record.id, "bob", timedelta(minutes=5))
        with pytest.raises(RecordNotFound):
            await bob_store.fetch_media(media_key("videos", record.id), tmp_path / "stolen.mp4")
    assert _sql(double, "select prompt, lease_owner from public.video_generations") == [("ada's", None)]


async def test_signed_out_on_a_per_user_project_is_refused_clearly(
    double_for: Callable[[str], SupabaseDouble],
) -> None:
    double = double_for("per-user")
    async with opened(double) as store:
        problems = await store.check_schema()
        assert len(problems) == 1
        assert "SUPABASE_EMAIL" in problems[0] and "harden_per_user" in problems[0]
        with pytest.raises(StoreUnavailable, match="row-level security"):
            await store.query(RecordQuery())


# -- one request each ---------------------------------------------------------------------------------


async def test_claim_and_compare_and_set_are_single_requests(double_for: Callable[[str], SupabaseDouble]) -> None:
    double = double_for("single-user")
    async with opened(double) as store:
        record = await store.insert(make())
        before = len(double.requests)
        assert await store.claim(record.id, "svc", timedelta(minutes=1))
        assert len(double.requests) == before + 1
        assert double.requests[-1].startswith("PATCH /rest/v1/video_generations?")
        before = len(double.requests)
        await store.update(record.id, {"status": Status.PROCESSING}, expect_status=Status.PENDING)
        assert len(double.requests) == before + 1
        assert "status=in." in double.requests[-1]


# -- limits -----------------------------------------------------------------------------------------------


async def test_file_over_the_limit_is_refused_before_upload(
    double_for: Callable[[str], SupabaseDouble], tmp_path: Path
) -> None:
    double = double_for("single-user")
    async with opened(double, max_upload_mb=1) as store:
        _file(tmp_path / "big.mp4", 1024 * 1024 + 1)
        before = len(double.requests)
        with pytest.raises(StoreWriteFailed, match=r"over the 1 MB .*max_upload_mb"):
            await store.put_media(media_key("videos", make().id), tmp_path / "big.mp4", "video/mp4")
        assert len(double.requests) == before


async def test_server_side_size_limit_is_a_write_failure(
    double_for: Callable[[str], SupabaseDouble], tmp_path: Path
) -> None:
    double = double_for("single-user")
    double.max_file_size = 1024
    async with opened(double) as store:
        _file(tmp_path / "v.mp4", 4096)
        with pytest.raises(StoreWriteFailed, match="too large"):
            await store.put_media(media_key("videos", make().id), tmp_path / "v.mp4", "video/mp4")
    assert _sql(double, "select count(*) from storage.objects") == [(0,)]


async def test_same_provider_job_twice_is_a_conflict_when_hardened(
    double_for: Callable[[str], SupabaseDouble],
) -> None:
    double = double_for("per-user")
    double.add_user("ada@example.test", PASSWORD)
    async with opened(double, email="ada@example.test", password=PASSWORD) as store:
        await store.insert(make(openai_job_id="video_1"))
        with pytest.raises(RecordConflict):
            await store.insert(make(openai_job_id="video_1"))


# -- diagnostics ------------------------------------------------------------------------------------------


@pytest.fixture
def partial_double(pg_server: PostgresServer, tmp_path: Path) -> Iterator[Callable[[int], SupabaseDouble]]:
    names: list[str] = []

    def factory(applied: int) -> SupabaseDouble:
        names.append(pg_server.create_database(migration_files()[:applied]))
        return SupabaseDouble(pg_server.conninfo(names[-1]), tmp_path / f"objects-{applied}")

    yield factory
    for name in names:
        pg_server.drop_database(name)


async def test_check_schema_names_the_migration_for_each_missing_piece(
    partial_double: Callable[[int], SupabaseDouble],
) -> None:
    table, video_bucket, image_columns, image_bucket, soranb_columns, _hardening, tags, lineage = MIGRATIONS[:8]
    assert sorted(p.name for p in migration_files()) == sorted(MIGRATIONS)

    async with opened(partial_double(0), public_buckets=False) as store:
        assert await store.check_schema() == [
            f"table video_generations is missing: apply supabase/migrations/{table}",
            f"bucket video_files is missing (or hidden from this key): apply supabase/migrations/{video_bucket}",
            f"bucket image_files is missing (or hidden from this key): apply supabase/migrations/{image_bucket}",
        ]
    async with opened(partial_double(2)) as store:
        problems = await store.check_schema()
        assert problems == [
            f"column video_generations.{c} is missing: apply supabase/migrations/{m}"
            for c, m in [
                ("image_url", image_columns),
                ("image_filename", image_columns),
                ("progress", soranb_columns),
                ("thumbnail_url", soranb_columns),
                ("remixed_from", soranb_columns),
                ("lease_owner", soranb_columns),
                ("lease_expires_at", soranb_columns),
                ("tags", tags),
                ("favourite", tags),
                ("note", tags),
                ("lineage", lineage),
            ]
        ] + [f"bucket image_files is missing (or hidden from this key): apply supabase/migrations/{image_bucket}"]
        with pytest.raises(StoreCorrupt, match="check_schema"):
            await store.query(RecordQuery())


# -- errors and secrets ------------------------------------------------------------------------------------


async def test_wrong_password_is_unavailable_and_never_echoed(double_for: Callable[[str], SupabaseDouble]) -> None:
    double = double_for("per-user")
    double.add_user("ada@example.test", PASSWORD)
    with pytest.raises(StoreUnavailable) as caught:
        async with opened(double, email="ada@example.test", password="wrong-password-123"):
            pass
    assert "Invalid login credentials" in str(caught.value)
    assert "wrong-password-123" not in str(caught.value)


async def test_rejected_key_is_unavailable_and_never_echoed(double_for: Callable[[str], SupabaseDouble]) -> None:
    double = double_for("single-user")
    bad_key = "eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYW5vbiJ9.not-a-valid-signature"
    async with opened(double, key=bad_key, public_buckets=True) as store:
        assert store.describe() == "supabase (supabase.test)"
        with pytest.raises(StoreUnavailable) as caught:
            await store.query(RecordQuery())
    assert "rejected the key" in str(caught.value)
    assert bad_key not in str(caught.value) and "not-a-valid-signature" not in str(caught.value)


async def test_unreachable_project_is_unavailable() -> None:
    store = SupabaseStore("http://127.0.0.1:9", "some-anon-key", timeout=5)
    with pytest.raises(StoreUnavailable, match="cannot reach") as caught:
        await store.open()
    assert "some-anon-key" not in str(caught.value)
    await store.close()


async def test_settings_are_checked_before_any_request() -> None:
    with pytest.raises(ConfigError):
        SupabaseStore("supabase.co", "key")
    with pytest.raises(ConfigError):
        SupabaseStore("https://x.supabase.co", "")
    with pytest.raises(ConfigError):
        SupabaseStore("https://x.supabase.co", "key", email="a@b.c")
    with pytest.raises(ConfigError, match="ACCESS_TOKEN"):
        await SupabaseStore("https://x.supabase.co", "key", access_token="not-a-jwt", public_buckets=True).open()
    with pytest.raises(StoreUnavailable, match="not open"):
        await SupabaseStore("https://x.supabase.co", "key").get("00000000-0000-4000-8000-000000000000")


async def test_close_leaves_a_given_http_client_open(double_for: Callable[[str], SupabaseDouble]) -> None:
    double = double_for("single-user")
    http = double.http_client()
    store = SupabaseStore(double.url, double.service_key, http_client=http)
    await store.open()
    await store.close()
    assert not http.is_closed
    await store.open()  # a closed store opens again
    assert await store.count(RecordQuery()) == 0
    await store.close()
    await http.aclose()


async def test_bad_media_keys_never_become_paths(double_for: Callable[[str], SupabaseDouble]) -> None:
    double = double_for("single-user")
    async with opened(double) as store:
        for key in ("videos/../secret", "../videos/x.mp4", "other/x.mp4", "videos/", "videos/a/b.mp4"):
            with pytest.raises(ValueError):
                await store.media_url(key)


# -- a damaged row ------------------------------------------------------------------------------------


async def test_a_row_an_older_app_damaged_is_a_failed_record_that_can_be_deleted(
    double_for: Callable[[str], SupabaseDouble],
) -> None:
    double = double_for("single-user")
    async with opened(double) as store:
        good = await store.insert(make("kept"))
        bad = await store.insert(make("damaged"))
        _sql(
            double,
            "update public.video_generations set video_url = 'C:/videos/x.mp4' where id = %s returning id",
            (bad.id,),
        )
        listed = {r.id: r for r in await store.query(RecordQuery())}
        assert set(listed) == {good.id, bad.id} and not listed[good.id].is_unreadable
        broken = listed[bad.id]
        assert broken.status == Status.FAILED and broken.is_unreadable and broken.video_key is None
        assert "video_url is neither a store key nor an http(s) URL" in (broken.error_message or "")
        assert (await store.get(bad.id)).is_unreadable
        await store.delete(bad.id)
        assert [r.id for r in await store.query(RecordQuery())] == [good.id]


async def test_media_is_fetched_only_by_key_and_never_beyond_the_size_soranb_stores(
    double_for: Callable[[str], SupabaseDouble], tmp_path: Path
) -> None:
    """A starting image is read from the store's own keys only (never a URL someone put in a row), and a
    replaced object larger than anything soranb uploads is refused while it streams in."""
    import http.server
    import threading

    hits: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    double = double_for("single-user")
    try:
        async with opened(double, max_upload_mb=0.01) as store:
            for url in (f"http://127.0.0.1:{server.server_address[1]}/big.png", "https://example.invalid/x.png"):
                with pytest.raises(RecordNotFound, match="fetches no URL"):
                    await store.fetch_media(url, tmp_path / "in.png")
            key = media_key("images", str(uuid.uuid4()), ".png")
            async with opened(double) as other:  # someone replaced the object with a larger one
                _file(tmp_path / "big.png", 64 * 1024)
                await other.put_media(key, tmp_path / "big.png", "image/png")
            with pytest.raises(StoreCorrupt, match="larger than"):
                await store.fetch_media(key, tmp_path / "in.png")
        assert hits == []
        assert not (tmp_path / "in.png").exists() and not [p for p in tmp_path.iterdir() if "in.png" in p.name]
    finally:
        server.shutdown()
        server.server_close()

"""The whole service on the Supabase store: generate, store, play, check, delete, as a signed-in user."""

from __future__ import annotations

import asyncio
import time

import pytest
from supabase_double import SupabaseDouble, reset_database

from soranb.records import Status
from soranb.request import GenerationRequest
from soranb.service import VideoService
from soranb.store.base import RecordQuery
from soranb.store.supabase import SupabaseStore

pytestmark = pytest.mark.postgres


def test_a_service_on_supabase_keeps_history_per_user_with_signed_urls(settings, tmp_path, supabase_databases):
    conninfo = supabase_databases["per-user"]
    reset_database(conninfo)
    double = SupabaseDouble(conninfo, tmp_path / "objects")
    double.add_user("ada@example.test", "correct horse")
    http = double.http_client()
    store = SupabaseStore(
        double.url, double.anon_key, http_client=http, email="ada@example.test", password="correct horse"
    )
    service = VideoService(settings, store=store, autostart=False)
    try:
        record = service.generate(GenerationRequest("a fox on a private shelf", "sora-2", "1280x720", 4))
        deadline = time.monotonic() + 60
        while service.count_records(RecordQuery.open_jobs()):
            assert time.monotonic() < deadline
            service.poll_once()
            time.sleep(0.05)
        done = service.get(record.id)
        assert done.status == Status.COMPLETED
        url = service.media_url(done.video_key)
        assert url.startswith(double.url) and "/object/sign/" in url  # private bucket: a signed URL
        assert service.media_path(done.video_key) is None  # nothing is played from local files
        assert service.run_check("schema").status == "ok"
        assert service.run_check("store").status == "ok"
        service.delete(record.id)
        assert service.list_records() == []
    finally:
        service.close()
        asyncio.run(http.aclose())

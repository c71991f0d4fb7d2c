"""Helpers for the widget tests: records straight into the local store, and driving jobs to the end."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from PIL import Image

from soranb.records import GenerationRecord, Status, utcnow
from soranb.store.local import LocalStore

XSS = "<img src=x onerror=alert(1)>"


def insert_records(data_dir: Path, records: Iterable[GenerationRecord]) -> list[GenerationRecord]:
    """Write records through a second LocalStore on the same folder (as another process would)."""

    async def go() -> list[GenerationRecord]:
        store = LocalStore(data_dir)
        await store.open()
        try:
            return [await store.insert(r) for r in records]
        finally:
            await store.close()

    return asyncio.run(go())


def make_records(count: int, *, status: Status = Status.COMPLETED, prompt: str = "clip", **extra: object):
    """`count` records, one minute apart, the last one newest; completed ones get media keys."""
    start = utcnow() - timedelta(hours=count)
    records = []
    for i in range(count):
        record = GenerationRecord(
            prompt=f"{prompt} {i:04d}",
            model="sora-2",
            size="1280x720",
            seconds=4,
            status=status,
            created_at=start + timedelta(minutes=i),
            updated_at=start + timedelta(minutes=i),
            **extra,  # type: ignore[arg-type]
        )
        if status == Status.COMPLETED:
            record = GenerationRecord(
                **{
                    **record.__dict__,
                    "progress": 100,
                    "video_key": f"videos/{record.id}.mp4",
                    "thumbnail_key": f"thumbnails/{record.id}.webp",
                }
            )
        records.append(record)
    return records


def finish(service, record_id: str, timeout: float = 60.0) -> GenerationRecord:
    """Drive the poller by hand until the record is no longer open."""
    deadline = time.monotonic() + timeout
    while True:
        service.poll_once()
        record = service.get(record_id)
        if not record.is_open:
            return record
        if time.monotonic() > deadline:
            raise AssertionError(f"record still {record.status} after {timeout} s")
        time.sleep(0.02)


def png(width: int, height: int, color: str = "red") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, format="PNG")
    return out.getvalue()


def upload_value(name: str, data: bytes, mime: str = "image/png") -> tuple[dict[str, object], ...]:
    """What ipywidgets 8 FileUpload.value holds after a browser upload."""
    import datetime

    return (
        {
            "name": name,
            "type": mime,
            "size": len(data),
            "content": memoryview(data),
            "last_modified": datetime.datetime.now(datetime.UTC),
        },
    )


class SigningService:
    """A real service whose store signs URLs that expire after `ttl` seconds on a hand-moved clock.

    Everything but media goes to the real service. `works(url)` says whether a URL a view shows
    would still play now (a real signed URL answers 400 after its deadline). `keeps_for`: like
    Supabase's store, hand back the last signature while it has more than that many seconds left.
    """

    def __init__(self, real, ttl: int | None = 60, *, keeps_for: float | None = None) -> None:
        from types import SimpleNamespace

        self._real = real
        self.now = 1000.0
        self.store = SimpleNamespace(signed_url_ttl=ttl)
        self.keeps_for = keeps_for
        self.signed: dict[str, float] = {}  # URL -> when it stops working
        self._last: dict[str, str] = {}

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def clock(self) -> float:
        return self.now

    def media_path(self, key: str):
        return None  # not on this machine: players load the store's URL

    def media_url(self, key: str) -> str:
        last = self._last.get(key)
        if last is not None and self.keeps_for is not None and self.signed[last] - self.now > self.keeps_for:
            return last
        url = f"https://storage.example/{key}?token=t{len(self.signed) + 1}"
        ttl = self.store.signed_url_ttl
        self.signed[url] = self.now + ttl if ttl is not None else float("inf")
        self._last[key] = url
        return url

    def works(self, url: str) -> bool:
        return self.now < self.signed.get(url, float("-inf"))

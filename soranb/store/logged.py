"""A Store wrapper that writes every store call to the debug log: operation, target, outcome, duration.

The service wraps whichever store it uses in this, so the diagnostics view shows
store traffic next to provider traffic without either store knowing about logs.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from ..debuglog import DebugLog
from ..errors import StoreError
from ..records import GenerationRecord, Status
from .base import Admission, RecordQuery, Store

__all__ = ["LoggedStore"]

T = TypeVar("T")


class LoggedStore(Store):
    """Delegates to `inner`; reads are logged at DEBUG, writes at INFO, failures at WARNING."""

    def __init__(self, inner: Store, log: DebugLog) -> None:
        self.inner = inner
        self.name = inner.name
        self._log = log

    def __getattr__(self, name: str) -> Any:  # store-specific extras (e.g. SupabaseStore.user_id)
        return getattr(self.inner, name)

    def describe(self) -> str:
        return self.inner.describe()

    @property
    def user_id(self) -> str | None:  # the inner store learns it when it signs in
        return self.inner.user_id

    @property
    def signed_url_ttl(self) -> int | None:
        return self.inner.signed_url_ttl

    def single_user_warning(self) -> str | None:
        return self.inner.single_user_warning()

    @property
    def vouches_for_rows(self) -> bool:  # the inner store learns it when it signs in
        return self.inner.vouches_for_rows

    def may_submit(self, record: GenerationRecord) -> bool:
        return self.inner.may_submit(record)

    async def _logged(self, what: str, call: Awaitable[T], *, write: bool) -> T:
        started = time.perf_counter()
        try:
            result = await call
        except StoreError as exc:
            self._log.warning(f"store {what} failed ({_ms(started)}): {exc}")
            raise
        self._log.add("INFO" if write else "DEBUG", f"store {what} ({_ms(started)})")
        return result

    async def open(self) -> None:
        await self._logged("open", self.inner.open(), write=True)

    async def close(self) -> None:
        await self.inner.close()

    async def insert(self, record: GenerationRecord, *, lease: tuple[str, timedelta] | None = None) -> GenerationRecord:
        return await self._logged(f"insert {record.id}", self.inner.insert(record, lease=lease), write=True)

    async def insert_admitted(self, record: GenerationRecord, admission: Admission) -> GenerationRecord:
        return await self._logged(
            f"insert {record.id} (admitted)", self.inner.insert_admitted(record, admission), write=True
        )

    async def created_since(self, since: datetime) -> list[GenerationRecord]:
        return await self._logged(f"records since {since:%Y-%m-%d %H:%M}", self.inner.created_since(since), write=False)

    async def get(self, record_id: str) -> GenerationRecord:
        return await self._logged(f"get {record_id}", self.inner.get(record_id), write=False)

    async def update(
        self,
        record_id: str,
        changes: Mapping[str, Any],
        *,
        expect_status: Status | Iterable[Status] | None = None,
    ) -> GenerationRecord:
        what = f"update {record_id} {sorted(changes)}"
        return await self._logged(what, self.inner.update(record_id, changes, expect_status=expect_status), write=True)

    async def query(self, query: RecordQuery) -> list[GenerationRecord]:
        return await self._logged(f"query (limit {query.limit})", self.inner.query(query), write=False)

    async def count(self, query: RecordQuery) -> int:
        return await self._logged("count", self.inner.count(query), write=False)

    async def delete(self, record_id: str) -> None:
        await self._logged(f"delete {record_id}", self.inner.delete(record_id), write=True)

    async def claim(self, record_id: str, owner: str, ttl: timedelta, *, expect_status: Status | None = None) -> bool:
        claimed = self.inner.claim(record_id, owner, ttl, expect_status=expect_status)
        return await self._logged(f"claim {record_id}", claimed, write=False)

    async def release(self, record_id: str, owner: str) -> None:
        await self._logged(f"release {record_id}", self.inner.release(record_id, owner), write=False)

    async def put_media(self, key: str, source: Path, content_type: str) -> None:
        await self._logged(f"put {key}", self.inner.put_media(key, source, content_type), write=True)

    def local_path(self, key: str) -> Path | None:
        return self.inner.local_path(key)

    async def media_url(self, key: str) -> str:
        return await self.inner.media_url(key)

    async def fetch_media(self, key: str, dest: Path) -> Path:
        return await self._logged(f"fetch {key}", self.inner.fetch_media(key, dest), write=False)

    async def delete_media(self, key: str) -> None:
        await self._logged(f"delete {key}", self.inner.delete_media(key), write=True)

    async def check_schema(self) -> list[str]:
        return await self._logged("check schema", self.inner.check_schema(), write=False)


def _ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f} ms"

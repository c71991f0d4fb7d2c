"""The store watch: telling the views about records another kernel or the CLI changed.

Every few seconds the service reads the newest records and compares them with its last look.
What this service did itself was announced when it happened (`note`), so it is not announced
twice; what changed elsewhere becomes a `created`, `updated` or `deleted` event.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from .debuglog import DebugLog
from .errors import SoranbError
from .records import GenerationRecord
from .store.base import RecordQuery, Store

__all__ = ["WATCH_INTERVAL_S", "WATCH_WINDOW", "StoreWatch"]

WATCH_INTERVAL_S = 5.0  # how often the store is read for changes made by other processes
WATCH_WINDOW = 100  # how many of the newest records the watch compares


class StoreWatch:
    """One service's view of the newest records, and what it has told its views about each."""

    def __init__(self, store: Store, emit: Callable[..., None], log: DebugLog) -> None:
        self.store = store
        self._emit = emit
        self._log = log
        self._seen: dict[str, datetime | None] = {}  # record id -> updated_at last told to the views
        self._snapshot: dict[str, GenerationRecord] | None = None  # the newest records at the last look

    def note(self, kind: str, record: GenerationRecord) -> None:
        """This service told its views about `record` itself: the next look must not repeat it."""
        self._seen[record.id] = None if kind == "deleted" else record.updated_at

    async def forever(self) -> None:
        while True:
            try:
                await self.once()
            except SoranbError as exc:
                self._log.debug(f"watch: {exc}")
            except Exception as exc:  # never let the watch die silently
                self._log.error(f"watch: unexpected {type(exc).__name__}: {exc}")
            await asyncio.sleep(WATCH_INTERVAL_S)

    async def once(self) -> None:
        """One read of the newest records, compared with the last one; the first call only takes the snapshot."""
        newest = await self.store.query(RecordQuery(limit=WATCH_WINDOW))
        now = {r.id: r for r in newest}
        before, self._snapshot = self._snapshot, now
        if before is None:
            return
        for record_id, record in now.items():
            if record_id in self._seen and self._seen[record_id] == record.updated_at:
                continue
            old = before.get(record_id)
            if old is None:
                self._emit("created", record)
            elif old.updated_at != record.updated_at:
                self._emit("updated", record)
        self._announce_deleted(before, now, newest)

    def _announce_deleted(
        self, before: dict[str, GenerationRecord], now: dict[str, Any], newest: list[GenerationRecord]
    ) -> None:
        oldest = min((r.created_at for r in newest), default=None)
        window_full = len(newest) >= WATCH_WINDOW
        for record_id, record in before.items():
            # missing from a full window may only mean newer records pushed it out
            pushed_out = window_full and oldest is not None and record.created_at < oldest
            if record_id in now or pushed_out:
                continue
            if not (record_id in self._seen and self._seen[record_id] is None):
                self._emit("deleted", record)

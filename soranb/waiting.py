"""Waiting for records to finish: woken by the service's events, the store read only as a safety net.

A waiter never polls the provider itself (the background poller does that for everyone). It
listens to the service's events, which also carry what the store watch saw other processes do,
and reads the store again only after a quiet spell, in case an event was missed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from .debuglog import DebugLog
from .errors import RecordNotFound
from .events import ServiceEvent
from .records import GenerationRecord
from .store.base import Store

__all__ = ["WAIT_RECHECK_S", "wait_for"]

WAIT_RECHECK_S = 30.0  # a waiter reads the store again after this long without news


async def wait_for(
    store: Store,
    subscribe: Callable[[Callable[[ServiceEvent], None]], Callable[[], None]],
    ids: Iterable[str],
    timeout: float | None,
    log: DebugLog,
) -> list[GenerationRecord]:
    """The records `ids` once none is open, or as they are when `timeout` passes (deleted ones left out)."""
    ids = list(ids)
    deadline = None if timeout is None else time.monotonic() + timeout
    latest: dict[str, GenerationRecord] = {}
    changed = asyncio.Event()

    def on_event(event: ServiceEvent) -> None:
        if event.record is None or event.record.id not in ids:
            return
        if event.kind == "deleted":
            latest.pop(event.record.id, None)
        else:
            latest[event.record.id] = event.record
        changed.set()

    unsubscribe = subscribe(on_event)
    try:
        while True:
            await _read_unknown(store, ids, latest)
            while True:
                records = [latest[i] for i in ids if i in latest]
                if not any(r.is_open for r in records):
                    return records
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    log.warning(f"wait: {sum(r.is_open for r in records)} jobs still open after {timeout} s")
                    return records
                changed.clear()
                try:
                    await asyncio.wait_for(changed.wait(), min(WAIT_RECHECK_S, remaining or WAIT_RECHECK_S))
                except TimeoutError:
                    break  # a quiet spell: read the store again
    finally:
        unsubscribe()


async def _read_unknown(store: Store, ids: list[str], latest: dict[str, GenerationRecord]) -> None:
    """Read what no event has said yet (at first, and after a quiet spell)."""
    for record_id in ids:
        if record_id not in latest or latest[record_id].is_open:
            try:
                latest[record_id] = await store.get(record_id)
            except RecordNotFound:
                latest.pop(record_id, None)

"""Progress between polls: running cards move from the poll schedule's estimate, not from requests.

The poller asks the provider only when a job should be done; in between, each running record's bar
advances by what the schedule has learned of the provider's pace. The estimate is shown, never
stored: the store keeps only what the provider said.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace

from .debuglog import DebugLog
from .events import ServiceEvent
from .records import GenerationRecord, Status
from .schedule import PollSchedule

__all__ = ["PROGRESS_TICK_S", "ProgressTicker"]

PROGRESS_TICK_S = 1.0  # how often running cards' progress moves between polls


class ProgressTicker:
    """The records running at the provider, as last told to the views, and their estimated progress."""

    def __init__(self, schedule: PollSchedule, emit: Callable[[ServiceEvent], None], log: DebugLog) -> None:
        self.schedule = schedule
        self._emit = emit
        self._log = log
        self._running: dict[str, GenerationRecord] = {}  # processing records as last told to the views
        self._ticked: dict[str, tuple[int, int]] = {}  # record id -> (progress, seconds left) last estimated

    def track(self, kind: str, record: GenerationRecord) -> None:
        """Follow what the service told its views: a processing record ticks, any other stops."""
        if kind != "deleted" and record.status == Status.PROCESSING and record.openai_job_id:
            self._running[record.id] = record
        else:
            self._running.pop(record.id, None)
            self._ticked.pop(record.id, None)

    async def forever(self) -> None:
        while True:
            try:
                self.tick()
            except Exception as exc:  # a view's trouble never stops the ticks
                self._log.error(f"progress: unexpected {type(exc).__name__}: {exc}")
            await asyncio.sleep(PROGRESS_TICK_S)

    def tick(self) -> None:
        """Emit a `progress` event for each running record whose estimate moved.

        Its record carries the estimated progress (never below what the provider said) and
        `metadata["eta_s"]`. Runs on the service's loop (the schedule has no lock).
        """
        for record in list(self._running.values()):
            progress, left = self.schedule.estimate(
                record.openai_job_id or "", model=record.model, size=record.size, seconds=record.seconds
            )
            if left is None:
                continue
            shown = (max(progress, record.progress), round(left))
            if self._ticked.get(record.id) == shown:
                continue
            self._ticked[record.id] = shown
            estimated = replace(record, progress=shown[0], metadata={**record.metadata, "eta_s": left})
            self._emit(ServiceEvent("progress", estimated))

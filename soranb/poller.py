"""The background poller: repeat one poll step and sleep as long as the step and the provider say.

The step is `JobRunner.step` (tests call it directly through `VideoService.poll_once`); this loop
only adds the waiting: a new record wakes it early, but a wake-up never cuts a Retry-After short,
and no failure ever ends the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from .debuglog import DebugLog
from .errors import RateLimited, SoranbError
from .schedule import PollSchedule

if TYPE_CHECKING:  # the runner loads the SDK
    from .runner import PollReport

__all__ = ["BackgroundPoller"]


class BackgroundPoller:
    """`step()` returns what one step did, or None when there was nothing to poll (sleep `idle_s`)."""

    def __init__(
        self,
        step: Callable[[], Awaitable[PollReport | None]],
        schedule: PollSchedule,
        log: DebugLog,
        idle_s: float,
    ) -> None:
        self._step = step
        self.schedule = schedule
        self._log = log
        self.idle_s = idle_s
        self.last_delay_s: float | None = None  # how long the loop last chose to sleep
        self._wake: asyncio.Event | None = None  # made on the loop that runs `forever`

    def poke(self) -> None:
        """Something new to submit: wake the loop now (it still honours a Retry-After)."""
        if self._wake is not None:
            self._wake.set()

    async def forever(self) -> None:
        self._wake = wake = asyncio.Event()
        while True:
            started = time.monotonic()
            delay, retry_after = await self._one_step()
            self.last_delay_s = delay
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=delay)
            if retry_after:  # woken early: still wait as long as the provider asked
                await asyncio.sleep(max(0.0, min(delay, retry_after) - (time.monotonic() - started)))

    async def _one_step(self) -> tuple[float, float | None]:
        """The delay before the next step and the provider's Retry-After, whatever the step raised."""
        try:
            report = await self._step()
        except RateLimited as exc:
            delay = self.schedule.after_failure(exc.retry_after)
            self._log.warning(f"poller: rate limited; next try in {delay:.1f} s")
            return delay, exc.retry_after
        except SoranbError as exc:
            delay = self.schedule.after_failure()
            self._log.warning(f"poller: {exc}; next try in {delay:.1f} s")
            return delay, None
        except Exception as exc:  # never let the poller die silently
            delay = self.schedule.after_failure()
            self._log.error(f"poller: unexpected {type(exc).__name__}: {exc}; next try in {delay:.1f} s")
            return delay, None
        if report is None:
            return self.idle_s, None
        return report.next_delay_s, report.retry_after_s

"""When to ask the provider again: as rarely as possible, as soon as a job should be done.

One list call refreshes every open job, so the cost of a refresh does not grow
with the number of jobs; what matters is how many refreshes. The schedule
estimates each job's finish time from how fast its progress rises (or, before
that is known, from the provider's `openai-poll-after-ms` hint or the model's
usual render time) and wakes just after the soonest one. It never sleeps
longer than `max_interval_s`, never shorter than `min_interval_s`, and backs
off on rate limits and outages.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from .catalog import MODELS, parse_size

__all__ = ["PollSchedule"]


@dataclass
class _Progress:
    first_seen: float
    first_progress: int
    last_seen: float
    last_progress: int
    overdue_since: float | None = None


@dataclass
class PollSchedule:
    min_interval_s: float = 0.25
    max_interval_s: float = 15.0
    speed: float = 1.0  # how much faster than the real service the provider runs, when known
    clock: Callable[[], float] = time.monotonic
    _jobs: dict[str, _Progress] = field(default_factory=dict)
    _failures: int = 0

    def observe(self, job_id: str, progress: int) -> None:
        """Record a job's progress as seen now."""
        now = self.clock()
        seen = self._jobs.get(job_id)
        if seen is None or progress < seen.last_progress:
            self._jobs[job_id] = _Progress(now, progress, now, progress)
        elif progress > seen.last_progress:
            seen.last_seen, seen.last_progress = now, progress

    def forget(self, job_ids: Iterable[str]) -> None:
        for job_id in job_ids:
            self._jobs.pop(job_id, None)

    def eta_s(self, job_id: str, *, model: str = "", size: str = "", seconds: int = 0) -> float | None:
        """Seconds until the job should be done, or None when nothing is known.

        Two estimates, the sooner wins: the model's usual render time (exact for the
        emulator, whose speed is known), and the rate at which progress rose (used only
        once it rose by at least 10 points: whole-percent progress seen over a short
        span overestimates badly). A job past its estimate is asked about again soon,
        then less and less often, so a job stuck at 99 % does not cost a request per tick.
        """
        seen = self._jobs.get(job_id)
        if seen is None:
            return None
        now = self.clock()
        expected = _expected_duration_s(model, size, seconds) / self.speed
        estimates = [expected * (100 - seen.first_progress) / 100 - (now - seen.first_seen)]
        gained = seen.last_progress - seen.first_progress
        span = seen.last_seen - seen.first_seen
        if gained >= 10 and span > 0:
            rate = gained / span  # percent per second
            estimates.append((100 - seen.last_progress) / rate - (now - seen.last_seen))
        eta = min(estimates)
        if eta > 0:
            seen.overdue_since = None
            return eta
        if seen.overdue_since is None:
            seen.overdue_since = now
        return 0.25 * (now - seen.overdue_since)  # overdue: back off gently

    def next_delay(self, etas: Iterable[float | None], *, hint_ms: int | None = None) -> float:
        """How long to sleep before the next refresh of open jobs."""
        self._failures = 0
        known = [eta for eta in etas if eta is not None]
        candidates = [self.max_interval_s]
        if known:
            candidates.append(min(known) + self.min_interval_s)
        if hint_ms is not None and not known:
            candidates.append(hint_ms / 1000)
        return max(self.min_interval_s, min(candidates))

    def after_failure(self, retry_after_s: float | None = None) -> float:
        """Exponential backoff (1, 2, 4 ... 60 s) that honours Retry-After."""
        self._failures += 1
        backoff = min(60.0, 2.0 ** (self._failures - 1))
        return max(backoff, retry_after_s or 0.0)


def _expected_duration_s(model: str, size: str, seconds: int) -> float:
    spec = MODELS.get(model)
    if spec is None or not seconds:
        return 60.0
    factor = 1.5 if size and max(parse_size(size)) >= 1792 else 1.0
    return seconds * spec.render_seconds_per_clip_second * factor

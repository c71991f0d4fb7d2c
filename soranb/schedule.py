"""When to ask the provider again: once, just after each job should be done.

One list call refreshes every open job, so what costs is the number of refreshes.
soranb polls for completions, not for progress: between polls the progress bars
move from this schedule's estimate (`PollSchedule.estimate`).

The schedule uses only what a real provider gives: the video objects (status,
progress, `created_at` and `completed_at` in whole seconds of the provider's
clock), the catalog's render time per clip second, and what it saw of earlier
jobs. A job is expected to take `pace` times the catalog's time; `pace` starts as
a guess, which may be `GUESS_SPREAD` times off either way, and is then learned.
Every piece of evidence is an interval for one job's duration:

- seen open at some moment: it lasts longer than that;
- seen completed: `completed_at - created_at` (plus or minus a second), and no
  longer than the moment it was seen done;
- seen in progress twice: the rate at which progress rose bounds when it reaches 100.

The pace is the interval that the recent finished jobs agree on (before any job
has finished, the open ones), or one covering them all when they disagree, as
real jobs do. For each open job the schedule then knows an earliest and a latest
finish, and picks the next look at it:

- narrow (at most `late_s` wide): at the latest finish, so a finished job is seen
  at most `late_s` after it finished;
- wide: a quarter of the way in (at least `late_s` after the earliest), so a job that
  ends early is not seen much later; each look adds evidence, so a few looks narrow it;
- nothing but the guess: at the guess's optimistic end, then at gaps growing with age;
- overdue (still open after its latest finish): again after `late_s`, then less and less often.

A wait between refreshes is never below `min_interval_s`, and never runs past
`max_interval_s` after the last refresh while the pace is unlearned, or past
`settled_interval_s` once a finished job has taught it (a safety net for jobs that
fail early). The `openai-poll-after-ms` hint is used only when no job has an estimate.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .catalog import MODELS, base_model, render_seconds

if TYPE_CHECKING:
    from .provider import ProviderJob

__all__ = ["GUESS_SPREAD", "PollSchedule"]

GUESS_SPREAD = 8.0  # the initial pace guess may be this many times too slow or too fast
_OPEN = ("queued", "in_progress")
_SLACK_S = 0.05  # own-clock evidence is widened by this much (request latency, timer jitter)
_RATE_MIN_POINTS = 3  # progress must rise by this many points before its rate is trusted
_PACE_WINDOW = 8  # finished jobs that the learned pace comes from (the pace may drift)
_DUE_S = 0.05  # a refresh this close is due now
_STEP_SHARE = 0.25  # a look into a wide window goes this far in (later looks cost less, risk more lateness)

Interval = tuple[float, float]


@dataclass
class _Job:
    start: float  # own clock: when the provider created the job
    start_err: float  # how far `start` may be off (0 when the job was seen being created)
    expected_s: float | None  # catalog render time; None when model, size or seconds are unknown
    last_seen: float
    last_progress: int = 0
    open_for: float = 0.0  # seen open this long after its start
    first_point: tuple[float, int] | None = None  # first (time, progress) seen in progress
    last_point: tuple[float, int] | None = None
    shown: int = 0  # the highest progress `estimate` returned


@dataclass
class PollSchedule:
    """Learns the provider's pace and says when the open jobs are worth a refresh.

    `pace` is the initial guess (1.0: as slow as the catalog says); a benchmark sets
    it wrong on purpose. `clock` is injectable so tests drive time by hand.
    """

    min_interval_s: float = 0.25
    max_interval_s: float = 15.0
    settled_interval_s: float = 60.0
    late_s: float = 0.75
    pace: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _jobs: dict[str, _Job] = field(default_factory=dict)
    _paces: deque[Interval] = field(default_factory=lambda: deque(maxlen=_PACE_WINDOW))
    _offset: float = math.inf  # own clock minus provider clock, an upper bound
    _refreshed_at: float = -math.inf  # when a video object was last seen
    _failures: int = 0

    # -- evidence ---------------------------------------------------------------------------
    def observe(self, job: ProviderJob, *, just_created: bool = False) -> None:
        """Record a video object as seen now, in any status (`just_created`: the create call's answer).

        Open jobs are followed; a completed one teaches the pace and is dropped; any other
        status (failed, cancelled, expired) is dropped without teaching anything.
        """
        now = self.clock()
        self._refreshed_at = now
        if job.created_at > 0:
            self._offset = min(self._offset, now - job.created_at)
        seen = self._jobs.get(job.id)
        if job.status not in _OPEN:
            self._jobs.pop(job.id, None)
            if job.status == "completed":
                self._learn(job, seen, now)
            return
        if seen is None or job.progress < seen.last_progress:  # new, or restarted by the provider
            if just_created or job.created_at <= 0 or math.isinf(self._offset):
                start, err = now, 0.0 if just_created else 1.0
            else:
                start, err = job.created_at + self._offset, 1.0
            seen = self._jobs[job.id] = _Job(start, err, _job_expected(job), now)
        seen.last_seen, seen.last_progress = now, job.progress
        seen.open_for = max(seen.open_for, now - seen.start)
        if seen.expected_s is None:
            seen.expected_s = _job_expected(job)
        if job.status == "in_progress" and job.progress >= 2:  # 1 may still mean "just started"
            if seen.first_point is None:
                seen.first_point = (now, job.progress)
            seen.last_point = (now, job.progress)

    def forget(self, job_ids: Iterable[str]) -> None:
        """Stop following jobs (deleted records); what they taught stays."""
        for job_id in job_ids:
            self._jobs.pop(job_id, None)

    # -- evidence from webhooks (soranb.webhooks) ---------------------------------------------
    def observe_event(self, job_id: str, status: str, at: int) -> None:
        """A job's end told by a verified webhook event instead of a video object; the job is dropped.

        `at` is the event's `created_at` (the provider's clock, whole seconds), which the provider
        stamps as the job ends: a completion teaches the pace as a completed video object would.
        """
        seen = self._jobs.pop(job_id, None)
        if seen is None or status != "completed" or not seen.expected_s:
            return
        now = self.clock()
        slack = seen.start_err + _SLACK_S
        lo, hi = seen.open_for - slack, now - seen.start + slack  # it had ended when the event arrived
        if at > 0 and math.isfinite(self._offset):  # the offset and `at` are whole seconds: +-2.5 s
            ended = at + self._offset - seen.start
            lo, hi = max(lo, ended - 2.5 - slack), min(hi, ended + 1.0 + slack)
        if hi > 0:
            self._paces.append((max(0.0, min(lo, hi)) / seen.expected_s, hi / seen.expected_s))

    def finish_window(self, job_id: str) -> tuple[float, float, float] | None:
        """(start, likeliest finish, latest finish) of a followed job on this schedule's clock (the latest
        may be infinite); None for a job never observed."""
        job = self._jobs.get(job_id)
        if job is None:
            return None
        _, latest, likely, _ = self._finish(job)
        return job.start, likely, latest

    @property
    def learned(self) -> bool:
        """True once a finished job has taught the pace (the guess no longer matters)."""
        return bool(self._paces)

    def _learn(self, job: ProviderJob, seen: _Job | None, now: float) -> None:
        expected = seen.expected_s if seen is not None and seen.expected_s else _job_expected(job)
        if not expected:
            return
        told: Interval = (-math.inf, math.inf)
        if job.completed_at and job.created_at > 0 and job.completed_at >= job.created_at:
            took = job.completed_at - job.created_at  # whole seconds of the provider's clock
            told = (took - 1.0, took + 1.0)
        own: Interval = (-math.inf, math.inf)
        if seen is not None:
            slack = seen.start_err + _SLACK_S
            own = (seen.open_for - slack, now - seen.start + slack)
        duration = _intersect(told, own) or told
        if math.isfinite(duration[0]) and math.isfinite(duration[1]) and duration[1] > 0:
            self._paces.append((max(0.0, duration[0]) / expected, duration[1] / expected))

    # -- estimates --------------------------------------------------------------------------
    def _pace_interval(self) -> tuple[Interval, float, bool]:
        """(interval, point, from_evidence): the pace the jobs agree on, or the guess's range."""
        guess = (self.pace / GUESS_SPREAD, self.pace * GUESS_SPREAD)
        if self._paces:
            pool = list(self._paces)
        else:  # nothing finished yet: what the open jobs say so far
            pool = [
                (own[0] / job.expected_s, own[1] / job.expected_s)
                for job in self._jobs.values()
                if job.expected_s and job.last_point is not None
                for own in [_own_duration(job)]
            ]
        if not pool:
            return guess, self.pace, False
        agreed = _intersect(*pool)
        if agreed is None:  # real jobs vary: cover them all
            lows, highs = [p[0] for p in pool], [p[1] for p in pool]
            agreed = (min(lows), max(highs))
        if not self._paces:
            agreed = _intersect(agreed, guess) or agreed
            if math.isinf(agreed[1]):
                agreed = (agreed[0], max(guess[1], agreed[0] * GUESS_SPREAD))
        mids = sorted((max(lo, agreed[0]) + min(hi, agreed[1])) / 2 for lo, hi in pool if math.isfinite(hi))
        point = mids[len(mids) // 2] if mids else self.pace
        point = min(max(point, agreed[0]), agreed[1])
        return agreed, point, True

    def _finish(self, job: _Job) -> tuple[float, float, float, float | None]:
        """(earliest, latest, likeliest, overdue since) finish of an open job, on the own clock.

        The job's own evidence wins over the pace when they disagree; it is overdue when it was
        seen open after the pace's latest finish and its own progress says nothing more.
        """
        own = _own_duration(job)
        (pace_lo, pace_hi), point, _ = self._pace_interval()
        expected = job.expected_s or _expected_duration_s("", "", 0)
        paced = (pace_lo * expected - job.start_err, pace_hi * expected + job.start_err)
        both = _intersect(own, paced)
        lo, hi = both if both is not None else own
        overdue = job.start + paced[1] if both is None and math.isinf(own[1]) and own[0] > paced[1] else None
        likely = min(max(point * expected, lo), hi) if math.isfinite(hi) else max(point * expected, lo)
        return job.start + lo, job.start + hi, job.start + likely, overdue

    def _wake(self, job: _Job) -> float:
        """The own-clock moment when this job is worth a look (a pure function of the evidence)."""
        earliest, latest, _, overdue = self._finish(job)
        if overdue is not None:  # should be done by now: ask again soon, then less and less often
            return job.last_seen + max(self.late_s, 0.5 * (job.last_seen - overdue))
        if latest - earliest <= self.late_s:
            return latest
        if job.last_point is None and not self._pace_interval()[2]:  # only the guess: its optimistic end
            return min(latest, max(earliest + self.late_s, job.last_seen + 0.5 * (job.last_seen - job.start)))
        if math.isinf(latest):
            return max(earliest + self.late_s, job.last_seen + 0.5 * (job.last_seen - job.start))
        return min(latest, max(earliest + self.late_s, earliest + _STEP_SHARE * (latest - earliest)))

    def _remember(self, job_id: str, model: str, size: str, seconds: int) -> _Job | None:
        job = self._jobs.get(job_id)
        if job is not None and job.expected_s is None and base_model(model) in MODELS and seconds:
            job.expected_s = _expected_duration_s(model, size, seconds)
        return job

    def eta_s(self, job_id: str, *, model: str = "", size: str = "", seconds: int = 0) -> float | None:
        """Seconds until the job is worth a refresh (0 or less: now); None for a job never observed.

        That is not when it will be done: while the pace is uncertain it is an earlier look
        that narrows the estimate; once it is certain, the latest moment the job can finish.
        """
        job = self._remember(job_id, model, size, seconds)
        if job is None:
            return None
        return self._wake(job) - self.clock()

    def estimate(self, job_id: str, *, model: str = "", size: str = "", seconds: int = 0) -> tuple[int, float | None]:
        """(progress now, seconds left) for an open job, from the schedule's estimate, between polls.

        Contract, for showing progress without asking the provider:
        - progress is 0..99: never 100 (only the provider says a job is done), never below the
          provider's last progress for the job, and never below what this method returned for it
          before (bars do not move back); it moves linearly from the last observed progress to
          100 at the likeliest finish;
        - seconds left is >= 0 until the likeliest finish, then 0.0 (the job is late, the next
          refresh will tell); None when the job was never observed (then progress is 0);
        - it makes no request and changes no schedule state except the remembered progress;
          it is cheap, so call it as often as a view repaints (say once a second), on the
          service's loop thread like every other method here (the schedule has no lock).
        """
        job = self._remember(job_id, model, size, seconds)
        if job is None:
            return 0, None
        now = self.clock()
        _, _, likely, overdue = self._finish(job)
        left = 0.0 if overdue is not None else max(0.0, likely - now)
        progress = float(job.last_progress)
        if likely > job.last_seen:
            share = min(1.0, max(0.0, (now - job.last_seen) / (likely - job.last_seen)))
            progress += (100 - job.last_progress) * share
        else:
            progress = 99.0
        job.shown = max(job.shown, job.last_progress, min(99, int(progress)))
        return job.shown, left

    # -- timing -----------------------------------------------------------------------------
    def _ceiling_s(self) -> float:
        """Seconds until the longest wait since the last refresh runs out."""
        longest = self.settled_interval_s if self.learned else self.max_interval_s
        return longest if math.isinf(self._refreshed_at) else self._refreshed_at + longest - self.clock()

    def due(self, etas: Iterable[float | None]) -> bool:
        """Whether a refresh is worth it now: some job is due or never observed, or the longest wait is over."""
        return self._ceiling_s() <= _DUE_S or any(eta is None or eta <= _DUE_S for eta in etas)

    def next_delay(self, etas: Iterable[float | None], *, hint_ms: int | None = None) -> float:
        """How long to sleep before the next refresh of open jobs (after a successful one)."""
        self._failures = 0
        known = [eta for eta in etas if eta is not None]
        ceiling = self._ceiling_s()
        if known:
            delay = min(known)
        elif hint_ms is not None:
            delay = hint_ms / 1000
        else:
            delay = ceiling
        return max(self.min_interval_s, min(ceiling, delay))

    def after_failure(self, retry_after_s: float | None = None) -> float:
        """Exponential backoff (1, 2, 4 ... 60 s) that honours Retry-After."""
        self._failures += 1
        backoff = min(60.0, 2.0 ** (self._failures - 1))
        return max(backoff, retry_after_s or 0.0)


def _own_duration(job: _Job) -> Interval:
    """What this job's own observations say of its duration (seconds from its start)."""
    slack = job.start_err + _SLACK_S
    lo, hi = job.open_for - slack, math.inf
    if job.last_point is not None:
        at, progress = job.last_point
        hi = (at - job.start + slack) * 100 / progress  # progress never runs ahead of time
        first = job.first_point
        if first is not None and progress - first[1] >= _RATE_MIN_POINTS:
            span = at - first[0]
            gained = progress - first[1]
            fast, slow = (gained + 1) / span, (gained - 1) / span  # whole percents: +-1 point
            lo = max(lo, at + (99 - progress) / fast - job.start - slack)
            hi = min(hi, at + (100 - progress) / slow - job.start + slack)
    if lo > hi:  # progress is not linear (or rendering lags): trust only what was seen
        return job.open_for - slack, math.inf
    return lo, hi


def _intersect(*intervals: Interval) -> Interval | None:
    lo = max(i[0] for i in intervals)
    hi = min(i[1] for i in intervals)
    return (lo, hi) if lo <= hi else None


def _job_expected(job: ProviderJob) -> float | None:
    seconds = int(job.seconds) if str(job.seconds).isdigit() else 0
    if base_model(job.model) not in MODELS or not seconds:
        return None
    try:
        return _expected_duration_s(job.model, job.size, seconds)
    except ValueError:
        return None


def _expected_duration_s(model: str, size: str, seconds: int) -> float:
    """The catalog's render time (`catalog.render_seconds`); 60 s for a job of unknown model or length."""
    if base_model(model) not in MODELS or not seconds:
        return 60.0
    return render_seconds(model, size, seconds)

"""The poll schedule: learn the provider's pace from what it shows, look once just after a job should be done.

Time is a fake clock driven by hand; the provider's clock is the same time plus an
offset, in whole seconds, as a real provider shows it. Nothing here measures wall time.
"""

from __future__ import annotations

import time

import pytest

from soranb.config import Settings
from soranb.provider import ProviderJob
from soranb.request import GenerationRequest
from soranb.schedule import GUESS_SPREAD, PollSchedule
from soranb.service import VideoService

from conftest import TEST_EMULATOR_SPEED

OFFSET = 1_700_000_000.4  # provider clock minus our clock
SORA2_4S = {"model": "sora-2", "size": "1280x720", "seconds": 4}  # the catalog says 60 s


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Provider:
    """Jobs that take `duration` seconds: queued for the first 5 %, then progress rises linearly."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.jobs: dict[str, tuple[float, float, str]] = {}

    def create(self, job_id: str, duration: float, seconds: int = 4) -> ProviderJob:
        self.jobs[job_id] = (self.clock.now, duration, str(seconds))
        return self.view(job_id)

    def view(self, job_id: str) -> ProviderJob:
        start, duration, seconds = self.jobs[job_id]
        elapsed = self.clock.now - start
        created = int(start + OFFSET)
        fields = {"id": job_id, "created_at": created, "model": "sora-2", "size": "1280x720", "seconds": seconds}
        if elapsed >= duration:
            return ProviderJob(status="completed", progress=100, completed_at=int(start + duration + OFFSET), **fields)
        if elapsed < 0.05 * duration:
            return ProviderJob(status="queued", progress=0, **fields)
        share = (elapsed - 0.05 * duration) / (0.95 * duration)
        return ProviderJob(status="in_progress", progress=max(1, min(99, int(share * 100))), **fields)


def follow(schedule: PollSchedule, provider: Provider, clock: Clock, job_id: str, *, limit: int = 30) -> list[float]:
    """Refresh the job whenever the schedule asks, until it is seen done; returns how late each look was."""
    looks: list[float] = []
    for _ in range(limit):
        eta = schedule.eta_s(job_id, **SORA2_4S)
        assert eta is not None
        clock.now += max(eta, schedule.min_interval_s)
        job = provider.view(job_id)
        schedule.observe(job)
        start, duration, _ = provider.jobs[job_id]
        looks.append(clock.now - (start + duration))
        if job.status == "completed":
            return looks
    raise AssertionError(f"never saw {job_id} done in {limit} looks")


@pytest.mark.parametrize("guess", [1.0, 4.0, 0.25])
def test_a_finished_job_teaches_the_pace_whatever_the_guess(guess):
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock, pace=guess)
    schedule.observe(provider.create("first", 60.0), just_created=True)
    looks = follow(schedule, provider, clock, "first")
    assert looks[-1] <= schedule.late_s  # even the first job, on a guess 4x off, is seen soon after it ends
    assert schedule.learned

    for job_id in ("second", "third", "fourth"):
        schedule.observe(provider.create(job_id, 60.0), just_created=True)
        looks = follow(schedule, provider, clock, job_id)
        assert len(looks) <= 2 and looks[0] > -1.0  # the guess is gone: at most one look just before the end
        assert 0 <= looks[-1] <= schedule.late_s
    assert len(looks) == 1  # jobs agree on the pace: one look, just after the end


def test_before_anything_finishes_the_rise_of_progress_overrules_the_guess():
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock, pace=0.25)  # thinks the job takes 15 s; it takes 60 s
    schedule.observe(provider.create("job", 60.0), just_created=True)
    for at in (10.0, 30.0):
        clock.now = 1000.0 + at
        schedule.observe(provider.view("job"))
    eta = schedule.eta_s("job", **SORA2_4S)
    assert eta is not None and 20.0 <= eta <= 30.0 + schedule.late_s  # not 15 s after creation, not later than 60 s
    _, left = schedule.estimate("job", **SORA2_4S)
    assert left == pytest.approx(30.0, abs=2.0)


def test_with_only_the_guess_the_first_look_comes_at_its_optimistic_end():
    clock = Clock()
    schedule = PollSchedule(clock=clock, pace=4.0)  # thinks 240 s: the job may be that many times faster
    schedule.observe(Provider(clock).create("job", 60.0), just_created=True)
    eta = schedule.eta_s("job", **SORA2_4S)
    assert eta == pytest.approx(240.0 / GUESS_SPREAD + schedule.late_s)
    assert eta < 60.0


def test_one_slow_job_widens_the_pace_instead_of_being_missed():
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock)
    for job_id, duration in (("a", 60.0), ("b", 75.0)):  # real jobs vary
        schedule.observe(provider.create(job_id, duration), just_created=True)
        follow(schedule, provider, clock, job_id)
    schedule.observe(provider.create("c", 60.0), just_created=True)
    eta = schedule.eta_s("c", **SORA2_4S)
    assert eta is not None and 60.0 < eta < 67.5  # the pace covers 60..75 s: a look early in that window
    assert follow(schedule, provider, clock, "c")[-1] <= 0.25 * 15.0 + schedule.late_s


def test_failed_jobs_teach_nothing_and_are_dropped():
    clock = Clock()
    schedule = PollSchedule(clock=clock)
    schedule.observe(ProviderJob("job", "queued", 0, int(clock.now + OFFSET)), just_created=True)
    clock.now += 5
    schedule.observe(ProviderJob("job", "failed", 30, int(OFFSET + 1000), error_code="moderation_blocked"))
    assert not schedule.learned
    assert schedule.eta_s("job") is None


def test_a_completion_time_before_the_creation_time_teaches_nothing():
    clock = Clock()
    schedule = PollSchedule(clock=clock)
    created = int(clock.now + OFFSET)
    job = ProviderJob("job", "completed", 100, created, "sora-2", "1280x720", "4", completed_at=created - 30)
    schedule.observe(job)  # never seen open either: nothing to learn from
    assert not schedule.learned


def test_an_overdue_job_is_asked_about_less_and_less_often():
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock)
    schedule.observe(provider.create("learn", 60.0), just_created=True)
    follow(schedule, provider, clock, "learn")
    schedule.observe(provider.create("stuck", 10_000.0), just_created=True)  # stays queued far past 60 s
    gaps = []
    for _ in range(8):
        eta = schedule.eta_s("stuck", **SORA2_4S)
        assert eta is not None
        gaps.append(max(eta, schedule.min_interval_s))
        clock.now += gaps[-1]
        schedule.observe(provider.view("stuck"))
    assert gaps[0] < 60.0 and max(gaps[1:4]) <= schedule.late_s  # soon again just after its end
    assert gaps[4:] == sorted(gaps[4:]) and gaps[-1] > 2 * schedule.late_s  # then further and further apart


def test_estimate_moves_progress_between_polls_never_back_never_to_100():
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock)
    assert schedule.estimate("unknown") == (0, None)
    schedule.observe(provider.create("learn", 60.0), just_created=True)
    follow(schedule, provider, clock, "learn")
    schedule.observe(provider.create("job", 60.0), just_created=True)
    seen = []
    for _ in range(8):
        clock.now += 10.0
        seen.append(schedule.estimate("job", **SORA2_4S))
    progress = [p for p, _ in seen]
    left = [s for _, s in seen]
    assert progress == sorted(progress) and progress[0] > 0 and progress[-1] == 99  # late: 99, not 100
    assert left[0] == pytest.approx(50.0, abs=1.0) and left[-1] == 0.0
    clock.now -= 70.0
    schedule.observe(provider.view("job"))  # the provider says less than was shown: the bar stays
    assert schedule.estimate("job", **SORA2_4S)[0] == 99


def test_next_delay_is_bounded_and_the_longest_wait_counts_from_the_last_refresh():
    clock = Clock()
    provider = Provider(clock)
    schedule = PollSchedule(clock=clock, min_interval_s=0.25, max_interval_s=15.0, settled_interval_s=60.0)
    assert schedule.next_delay([40.0, 3.0, None]) == pytest.approx(3.0)
    assert schedule.next_delay([0.0]) == pytest.approx(0.25)
    assert schedule.next_delay([None], hint_ms=2000) == pytest.approx(2.0)
    schedule.observe(provider.create("job", 60.0), just_created=True)
    assert schedule.next_delay([500.0]) == pytest.approx(15.0)
    clock.now += 10.0  # a wake-up without a refresh (a new record) does not restart the longest wait
    assert schedule.next_delay([500.0]) == pytest.approx(5.0)
    follow(schedule, provider, clock, "job")
    assert schedule.next_delay([500.0]) == pytest.approx(60.0)  # learned: only a safety net remains


def test_a_refresh_is_due_for_a_job_never_seen_or_a_look_that_has_come():
    clock = Clock()
    schedule = PollSchedule(clock=clock)
    schedule.observe(Provider(clock).create("job", 60.0), just_created=True)
    assert schedule.due([None])
    assert schedule.due([0.0, 30.0])
    assert not schedule.due([5.0, 30.0])
    clock.now += schedule.max_interval_s
    assert schedule.due([5.0])


def test_backoff_doubles_caps_and_honours_retry_after():
    schedule = PollSchedule()
    assert [schedule.after_failure() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert schedule.after_failure(retry_after_s=30) == 30
    for _ in range(10):
        delay = schedule.after_failure()
    assert delay == 60.0
    schedule.next_delay([1.0])  # a success resets the backoff
    assert schedule.after_failure() == 1.0


def test_the_background_step_submits_a_new_record_without_a_status_request(service):
    service.generate(GenerationRequest("first", "sora-2", "1280x720", 4))
    report = service._run(service.runner.step(only_when_due=True))  # woken by a second record, say
    assert report.status_requests == 0 and report.next_delay_s > 0
    assert service.poll_once().status_requests >= 1  # asked directly, it refreshes


def test_the_runner_teaches_the_schedule_from_finished_jobs(service):
    record = service.generate(GenerationRequest("teach", "sora-2", "1280x720", 4))
    deadline = time.monotonic() + 60
    while record.id not in service.poll_once().completed:
        assert time.monotonic() < deadline, "the job never completed"
        time.sleep(0.05)
    assert service.schedule.learned
    second = service.generate(GenerationRequest("second", "sora-2", "1280x720", 4))
    eta = service.schedule.eta_s(second.openai_job_id or "", **SORA2_4S)
    assert eta is not None and eta < 60.0 / GUESS_SPREAD  # the emulator runs fast: the guess is gone


def test_a_finished_job_frees_its_slot_for_the_next_record_at_once(tmp_path, monkeypatch):
    settings = Settings.from_env(
        {
            "SORANB_DATA_DIR": str(tmp_path / "data"),
            "SORANB_EMULATOR_SPEED": TEST_EMULATOR_SPEED,
            "SORANB_MAX_CONCURRENT_JOBS": "2",
        },
        dotenv=False,
    )
    with VideoService(settings, autostart=False) as service:
        monkeypatch.setattr(service.schedule, "eta_s", lambda *args, **kwargs: 30.0)  # open jobs: no look soon
        first = service.generate(GenerationRequest("first", "sora-2", "1280x720", 4))
        service.generate(GenerationRequest("long", "sora-2-pro", "1792x1024", 12))  # still open after the first
        waiting = service.generate(GenerationRequest("waiting", "sora-2", "1280x720", 4))
        assert waiting.openai_job_id is None  # the cap holds it back
        deadline = time.monotonic() + 60
        while first.id not in (report := service.poll_once()).completed:
            assert time.monotonic() < deadline, "the first job never completed"
            time.sleep(0.05)
        assert report.next_delay_s == service.schedule.min_interval_s  # not the next look at an open job


def test_the_schedule_and_the_emulator_share_one_render_time_for_every_catalog_size() -> None:
    """What the poller expects before it has learned the pace is what the emulator takes (at speed 1),
    for every model, size (720p, 1024p, 1080p) and length in the catalog, and for dated snapshots."""
    from soranb.catalog import MODELS, SNAPSHOTS
    from soranb.emulator.config import EmulatorConfig
    from soranb.schedule import _expected_duration_s

    emulator = EmulatorConfig(speed=1.0)
    cases = [(model, size, s) for model, spec in MODELS.items() for size in spec.sizes for s in spec.seconds]
    cases += [(snapshot, MODELS[model].sizes[-1], 8) for snapshot, model in SNAPSHOTS.items()]
    for model, size, seconds in cases:
        assert _expected_duration_s(model, size, seconds) == emulator.job_duration(model, size, seconds), (model, size)
    assert emulator.job_duration("sora-2-pro", "1792x1024", 4) == 1.5 * emulator.job_duration(
        "sora-2-pro", "1280x720", 4
    )

"""The poll schedule: wake when a job should be done, never too often, back off on trouble."""

from __future__ import annotations

import pytest

from soranb.schedule import PollSchedule


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_eta_follows_the_rate_of_progress():
    clock = Clock()
    schedule = PollSchedule(clock=clock)
    schedule.observe("job", 10)
    clock.now += 10
    schedule.observe("job", 30)  # 2 % per second: 70 % to go is 35 s
    assert schedule.eta_s("job") == pytest.approx(35.0)
    clock.now += 5
    assert schedule.eta_s("job") == pytest.approx(30.0)


def test_before_any_progress_the_models_usual_time_is_used():
    clock = Clock()
    schedule = PollSchedule(clock=clock, speed=2.0)
    schedule.observe("job", 0)
    # sora-2 renders about 15 s per clip second: 4 s -> 60 s, at speed 2 -> 30 s
    assert schedule.eta_s("job", model="sora-2", size="1280x720", seconds=4) == pytest.approx(30.0)
    assert schedule.eta_s("unknown") is None


def test_next_delay_is_bounded_and_wakes_just_after_the_soonest_job():
    schedule = PollSchedule(min_interval_s=0.25, max_interval_s=15.0)
    assert schedule.next_delay([40.0, 3.0, None]) == pytest.approx(3.25)
    assert schedule.next_delay([0.0]) == pytest.approx(0.25)
    assert schedule.next_delay([500.0]) == 15.0
    assert schedule.next_delay([None], hint_ms=2000) == pytest.approx(2.0)
    assert schedule.next_delay([]) == 15.0


def test_backoff_doubles_caps_and_honours_retry_after():
    schedule = PollSchedule()
    assert [schedule.after_failure() for _ in range(4)] == [1.0, 2.0, 4.0, 8.0]
    assert schedule.after_failure(retry_after_s=30) == 30
    for _ in range(10):
        delay = schedule.after_failure()
    assert delay == 60.0
    schedule.next_delay([1.0])  # a success resets the backoff
    assert schedule.after_failure() == 1.0


def test_small_progress_steps_do_not_push_the_estimate_late():
    clock = Clock()
    schedule = PollSchedule(clock=clock, speed=4.0)  # sora-2 4 s at x4: 15 s
    schedule.observe("job", 0)
    clock.now += 1.0
    schedule.observe("job", 6)  # whole percents: a rate from 6 points would say 15.7 s to go
    assert schedule.eta_s("job", model="sora-2", size="1280x720", seconds=4) == pytest.approx(14.0)


def test_an_overdue_job_is_asked_about_less_and_less_often():
    clock = Clock()
    schedule = PollSchedule(clock=clock, speed=4.0)
    schedule.observe("job", 0)
    clock.now += 20  # past its 15 s
    schedule.observe("job", 99)
    first = schedule.eta_s("job", model="sora-2", size="1280x720", seconds=4)
    clock.now += 8
    later = schedule.eta_s("job", model="sora-2", size="1280x720", seconds=4)
    assert first == 0.0 and later == pytest.approx(2.0)

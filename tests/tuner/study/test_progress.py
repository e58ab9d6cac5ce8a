"""The run's progress marker: trials done, and the time left from the mean trial so far."""

from __future__ import annotations

from tuner.study.progress import RunProgress


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_time_left_is_the_mean_trial_so_far_times_the_trials_left() -> None:
    clock = Clock()
    progress = RunProgress(5, clock=clock)
    clock.now += 20
    assert progress.after_trial() == "[1/5, ~80 s left]"
    clock.now += 40  # slower trials raise the estimate
    assert progress.after_trial() == "[2/5, ~90 s left]"
    clock.now += 60
    assert progress.after_trial() == "[3/5, ~80 s left]"
    clock.now += 30
    assert progress.after_trial() == "[4/5, ~38 s left]"
    clock.now += 30
    assert progress.after_trial() == "[5/5]"


def test_long_runs_are_told_in_minutes_and_hours() -> None:
    clock = Clock()
    progress = RunProgress(200, clock=clock)
    clock.now += 30
    assert progress.after_trial() == "[1/200, ~1 h 40 min left]"
    short = RunProgress(4, clock=clock)
    clock.now += 100
    assert short.after_trial() == "[1/4, ~5 min left]"

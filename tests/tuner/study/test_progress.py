"""The run's progress marker: trials done, and the time left from the mean trial so far,
the confirmation pass's searches included."""

from __future__ import annotations

from tuner.config import load_config
from tuner.study.confirm import planned_searches
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


def test_the_confirmation_pass_counts_in_the_time_left() -> None:
    clock = Clock()
    progress = RunProgress(3, after_runs=4, clock=clock)
    clock.now += 30
    assert progress.after_trial() == "[1/3, ~3 min left, confirmation included]"  # 6 runs
    clock.now += 30
    assert progress.after_trial() == "[2/3, ~2 min left, confirmation included]"
    clock.now += 30
    assert progress.after_trial() == "[3/3, ~2 min of confirmation left]"  # 4 x 30 s


def test_the_confirmation_pass_plans_every_finalist_and_reference_per_round() -> None:
    def planned(**confirm: object) -> int:
        return planned_searches(load_config(None, {"confirm": confirm}))

    assert planned(top_k=2, repeats=1, references=True) == 4  # the demo's
    assert planned(top_k=3, repeats=2, references=False) == 6
    assert planned(top_k=0, repeats=2, references=True) == 0  # no confirmation pass

"""Interleaved confirmation on targets of known capacity, each run scattered by +-4% of
noise: two that differ by a third are ranked right and told apart, two identical ones are
called tied instead of one crowned at random; and the ratio's interval itself."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

from tests.support.fake_measurer import Served
from tests.tuner.study.test_confirm_optimize_scripted import confirmed
from tuner.review.show import winner_summary
from tuner.study.ratios import TIED, ratio, tie_text


def noisy(capacity_none: float, capacity_batching: float, seed: int = 4):
    rng = random.Random(seed)
    runs: Counter = Counter()

    def served(batching, flags, rate) -> Served:
        runs[batching is None] += 1
        base = capacity_none if batching is None else capacity_batching
        return Served(rps=base * rng.uniform(0.96, 1.04), p95_ms=40.0)

    return served


def test_two_targets_of_different_capacity_are_ranked_and_told_apart(tmp_path: Path) -> None:
    study, winner, _, lines = confirmed(tmp_path, noisy(300.0, 400.0), repeats=5)
    assert winner["trial"] == 1 and winner["confirmed"]  # the batching one, 400 req/s
    point, low, high = winner["versus_runner_up"]
    assert 1.0 < low <= point <= high and winner["tied_with"] == []
    assert 400 / 300 / 1.1 < point < 400 / 300 * 1.1
    assert TIED not in winner_summary(study, "p95")
    assert lines[1].startswith("  round 1/5: #")


def test_two_identical_targets_are_tied(tmp_path: Path) -> None:
    study, winner, _, lines = confirmed(tmp_path, noisy(300.0, 300.0), repeats=5)
    _, low, high = winner["versus_runner_up"]
    assert low < 1.0 < high
    assert winner["tied_with"] == [1 - winner["trial"]]
    assert f"{TIED} with trial {1 - winner['trial']}" in winner_summary(study, "p95")
    assert any(TIED in line for line in lines)
    assert tie_text(study, winner).startswith(f"; {TIED} with trial")  # export says it too


def test_the_ratio_is_paired_by_round_and_bootstrapped() -> None:
    # round effects (a machine drifting by 20%) cancel in the paired ratio
    drift = [1.0, 0.9, 1.1, 0.8, 1.2]
    a = [{"rps": 200 * d, "round": i} for i, d in enumerate(drift)]
    b = [{"rps": 100 * d * (1.01 if i % 2 else 0.99), "round": i} for i, d in enumerate(drift)]
    r = ratio(a, b)
    assert r.how == "paired over 5 rounds"
    assert 1.95 < r.low <= r.high < 2.05 and not r.tied
    assert r.text() == f"{r.point:.2f}x [{r.low:.2f}-{r.high:.2f}]"


def test_with_too_few_rounds_the_capacities_intervals_bound_the_ratio() -> None:
    a = [{"rps": 200.0, "round": None, "ci": [190.0, 210.0]}]
    b = [{"rps": 100.0, "round": None, "ci": [95.0, 105.0]}]
    r = ratio(a, b)
    assert (r.low, r.high) == (190.0 / 105.0, 210.0 / 95.0)
    assert ratio(a, [{"rps": 100.0, "round": None, "ci": None}]).text() == "2.00x"
    assert ratio(a, [{"rps": 0.0}]) is None

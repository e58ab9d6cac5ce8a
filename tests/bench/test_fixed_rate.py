"""bench/fixed_rate.py's arithmetic: a spread split into its part between trials and within."""

from __future__ import annotations

import pytest

from bench.fixed_rate import correlation, decompose


def steps(per_trial: dict[int, list[float]]) -> list[dict]:
    keys = ("cost_ms", "server_ms", "service_ms", "locust_ms", "p95_ms")
    return [
        {"trial": trial, **{key: value for key in keys}}
        for trial, values in per_trial.items()
        for value in values
    ]


def test_trials_that_differ_only_from_each_other_have_no_spread_within() -> None:
    spread = decompose(steps({0: [9.0, 9.0, 9.0], 1: [11.0, 11.0, 11.0]}))["cost_ms"]
    assert spread["within_trial_percent"] == 0.0
    assert spread["between_trials_percent"] == pytest.approx(10.0)
    assert (spread["min"], spread["median"], spread["max"]) == (9.0, 10.0, 11.0)


def test_steps_that_differ_inside_equal_trials_have_no_spread_between() -> None:
    spread = decompose(steps({0: [9.0, 11.0], 1: [11.0, 9.0]}))["p95_ms"]
    assert spread["between_trials_percent"] == 0.0
    assert spread["within_trial_percent"] == pytest.approx(10.0)


def test_correlation_needs_three_points_that_vary() -> None:
    assert correlation([1.0, 2.0, 3.0], [2.0, 4.0, 6.5]) == pytest.approx(1.0, abs=0.01)
    assert correlation([1.0, 2.0], [2.0, 4.0]) is None
    assert correlation([1.0, 1.0, 1.0], [2.0, 4.0, 6.0]) is None

"""Which step is the capacity and what brackets it, from steps whose verdicts are given: the
undecided ones (a latency interval that holds the SLO) must neither cap the capacity under a
rate that decidedly passed nor stand in for a bound."""

from __future__ import annotations

import math

import pytest

from tuner.capacity import StepCriteria, StepResult
from tuner.capacity.interval import capacity_interval
from tuner.capacity.search import capacity_point
from tuner.capacity.step import CurvePoint, Verdict

CRITERIA = StepCriteria(percentile="p95", slo_ms=40.0, max_error_rate=0.01, min_goodput_ratio=0.95)


def step(index: int, rate: float, p95_ms: float, outcome: str) -> CurvePoint:
    passed = outcome == "pass" or (outcome == "undecided" and p95_ms <= CRITERIA.slo_ms)
    return CurvePoint(
        index,
        StepResult(rate, rate, rate, rate, p95_ms / 2, p95_ms, p95_ms * 1.2, 0.0, duration_s=3.0),
        Verdict(
            passed=passed,
            achieved=True,
            reason=None if passed else f"p95 {p95_ms} ms > SLO 40 ms",
            decided=outcome != "undecided",
        ),
    )


def test_an_undecided_failure_below_a_decided_pass_does_not_cap_the_capacity() -> None:
    # a search on the slow host (bench/RESULTS.md): 225 req/s read p95 43.8 ms, its interval
    # holding the SLO, then 248 req/s passed decidedly at 28.7 ms
    points = [
        step(0, 170.8, 26.1, "pass"),
        step(1, 225.5, 43.8, "undecided"),
        step(2, 248.0, 28.7, "pass"),
        step(3, 496.0, 274.0, "fail"),
        step(4, 196.2, 31.7, "undecided"),
    ]
    best, note = capacity_point(points)
    assert best is not None and best.result.target_rps == 248.0
    assert note is None
    ci = capacity_interval(points, best, CRITERIA)
    assert ci is not None and (ci.low, ci.high) == (248.0, 496.0)
    assert 248.0 < ci.estimate < 496.0  # interpolated between 28.7 ms and 274 ms


def test_a_decided_failure_below_a_pass_still_caps_it_and_says_so() -> None:
    points = [
        step(0, 170.8, 26.1, "pass"),
        step(1, 225.5, 55.0, "fail"),
        step(2, 248.0, 28.7, "pass"),
        step(3, 496.0, 274.0, "fail"),
    ]
    best, note = capacity_point(points)
    assert best is not None and best.result.target_rps == 170.8
    assert note is not None and "fails at the lower 225.5 req/s" in note
    ci = capacity_interval(points, best, CRITERIA)
    assert ci is not None and (ci.low, ci.high) == (170.8, 225.5)


def test_an_undecided_failure_below_only_undecided_passes_still_caps_it() -> None:
    points = [
        step(0, 170.8, 26.1, "pass"),
        step(1, 225.5, 43.8, "undecided"),
        step(2, 248.0, 38.0, "undecided"),
        step(3, 496.0, 274.0, "fail"),
    ]
    best, _ = capacity_point(points)
    assert best is not None and best.result.target_rps == 170.8
    ci = capacity_interval(points, best, CRITERIA)
    # the undecided steps lie inside: the bound above is the first decided failure
    assert ci is not None and (ci.low, ci.high) == (170.8, 496.0)
    share = math.log(40.0 / 26.1) / math.log(43.8 / 26.1)  # in log latency
    assert ci.estimate == pytest.approx(170.8 + share * (225.5 - 170.8))


def test_the_crossing_is_interpolated_in_log_latency_nearer_a_convex_knee() -> None:
    # p95 = 10 / (1 - r / 800) ms: 26.7 ms at 500 req/s, 80 ms at 700, the SLO crossed at 600
    def p95(rate: float) -> float:
        return 10.0 / (1 - rate / 800.0)

    points = [step(0, 500.0, p95(500.0), "pass"), step(1, 700.0, p95(700.0), "fail")]
    best, _ = capacity_point(points)
    ci = capacity_interval(points, best, CRITERIA)
    assert ci is not None
    straight = 500.0 + (40.0 - p95(500.0)) / (p95(700.0) - p95(500.0)) * 200.0
    assert straight == pytest.approx(550.0)  # a line in milliseconds: 50 req/s short
    assert ci.estimate == pytest.approx(500.0 + math.log(1.5) / math.log(3.0) * 200.0)
    assert abs(ci.estimate - 600.0) < 0.6 * abs(straight - 600.0)  # 573.8: 26 short


def test_the_bound_above_is_a_decided_failure_never_a_pass() -> None:
    points = [
        step(0, 100.0, 20.0, "pass"),
        step(1, 150.0, 39.0, "undecided"),
        step(2, 180.0, 43.0, "undecided"),
        step(3, 200.0, 30.0, "pass"),
        step(4, 300.0, 90.0, "fail"),
    ]
    best, _ = capacity_point(points)
    assert best is not None and best.result.target_rps == 200.0
    ci = capacity_interval(points, best, CRITERIA)
    assert ci is not None and (ci.low, ci.high) == (200.0, 300.0)

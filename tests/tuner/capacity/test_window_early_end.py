"""A failing step ends early only once its window can no longer pass."""

from __future__ import annotations

from types import SimpleNamespace

from tuner.capacity import StepCriteria, StepResult, judge
from tuner.capacity.window_early_end import EarlyFail

CRITERIA = StepCriteria(percentile="p95", slo_ms=20.0, max_error_rate=0.01, min_goodput_ratio=0.95)


def interval(requests=100, failures=0, p50=5.0, p95=10.0, p99=15.0, skipped=0):
    return SimpleNamespace(
        requests=requests, failures=failures, p50_ms=p50, p95_ms=p95, p99_ms=p99, skipped=skipped
    )


def rule() -> EarlyFail:
    # window bound: 100 req/s x 6 s x 1.2 + 20 in flight = 740 requests; 5% = 37
    return EarlyFail(CRITERIA, target_rps=100.0, measure_s=6.0, max_in_flight=20)


def test_healthy_intervals_never_end_a_step() -> None:
    early = rule()
    assert all(early.check(interval()) is None for _ in range(6))


def test_a_slow_tail_in_one_interval_is_not_enough() -> None:
    early = rule()  # p95 over the SLO: >= 5 of 100 requests late; 5 < 37
    assert early.check(interval(p95=30.0)) is None
    assert early.check(interval()) is None


def test_a_saturated_median_ends_it_once_the_bound_is_passed() -> None:
    early = rule()  # p50 over the SLO: >= 50 of 100 late, over the 37 the window allows
    reason = early.check(interval(p50=40.0, p95=90.0, p99=120.0))
    assert reason and "ended early after 1 interval(s)" in reason and "p95" in reason


def test_errors_beyond_the_budget_and_skipped_arrivals_end_it() -> None:
    early = rule()  # 1% of 740 = 7.4 failures
    assert early.check(interval(failures=5)) is None
    assert "failed requests" in early.check(interval(failures=5))
    assert "in-flight ceiling" in rule().check(interval(skipped=3))


def test_a_step_that_ended_early_fails_with_that_reason() -> None:
    step = StepResult(
        target_rps=100.0,
        offered_rps=100.0,
        completed_rps=100.0,
        goodput_rps=100.0,
        p50_ms=5.0,
        p95_ms=10.0,
        p99_ms=15.0,
        error_rate=0.0,
        ended_early="ended early after 1 interval(s): ...",
    )
    verdict = judge(step, CRITERIA)
    assert not verdict.passed and verdict.reason.startswith("ended early")

"""Early stopping: only clearly hopeless trials, never on one bad second, never a reference."""

from __future__ import annotations

from tuner.study.trial_pruning import EarlyStop


def feed(rule: EarlyStop, intervals: list[tuple[float, float | None]]) -> list[str | None]:
    return [rule.check(rps, latency) for rps, latency in intervals]


def test_stops_after_three_intervals_far_over_the_slo() -> None:
    rule = EarlyStop("p95", slo_ms=100.0, best_feasible_rps=None)
    answers = feed(rule, [(500, 400), (500, 400), (500, 400)])
    assert answers[:2] == [None, None]
    assert answers[2] == "p95 above 3x the SLO for 3 intervals"


def test_a_good_interval_resets_the_count() -> None:
    rule = EarlyStop("p95", slo_ms=100.0, best_feasible_rps=None)
    assert feed(rule, [(500, 400), (500, 400), (500, 90), (500, 400), (500, 400)]) == [None] * 5


def test_merely_over_the_slo_is_measured_in_full() -> None:
    rule = EarlyStop("p99", slo_ms=100.0, best_feasible_rps=None)
    assert feed(rule, [(500, 250)] * 10) == [None] * 10


def test_stops_when_far_below_the_best_feasible_trial() -> None:
    rule = EarlyStop("p95", slo_ms=100.0, best_feasible_rps=1000.0)
    answers = feed(rule, [(400, 10), (450, 10), (420, 10)])
    assert answers[-1] is not None and "under 50% of the best feasible trial" in answers[-1]


def test_slower_but_not_hopeless_goes_on() -> None:
    rule = EarlyStop("p95", slo_ms=100.0, best_feasible_rps=1000.0)
    assert feed(rule, [(400, 10), (600, 10), (400, 10), (400, 10)]) == [None] * 4


def test_reference_trials_are_never_stopped() -> None:
    rule = EarlyStop("p95", slo_ms=100.0, best_feasible_rps=1000.0, is_reference=True)
    assert feed(rule, [(10, 10_000)] * 6) == [None] * 6

"""The capacity search's logic against a deterministic fake step (no servers): where it
probes, how it brackets and bisects, when it prunes, what it reports and its bounds."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

import pytest

from tests.tuner.capacity.fake_target import FakeTarget
from tuner.capacity import SearchSettings, StepCriteria, StepResult, search
from tuner.capacity.search import (
    AT_MAX,
    BELOW_MIN,
    MAX_STEPS,
    PAST_INCUMBENT,
    PRUNED,
    RESOLVED,
    TIME_BUDGET,
)
from tuner.capacity.step import judge

CRITERIA = StepCriteria(percentile="p95", slo_ms=20.0, max_error_rate=0.01, min_goodput_ratio=0.95)


def settings(**overrides) -> SearchSettings:
    values = dict(
        min_rps=10.0,
        max_rps=5000.0,
        resolution=0.05,
        max_steps=20,
        max_trial_s=1e9,
        step_s=4.0,
        growth=2.0,
        low_check_fraction=0.0,
    )
    values.update(overrides)
    return SearchSettings(**values)


def slo_rate(target: FakeTarget) -> float:
    """The highest rate whose fake p95 meets the SLO: base / (1 - r/C) = slo."""
    return target.capacity * (1 - target.base_ms / CRITERIA.slo_ms)


def test_brackets_up_then_bisects_to_the_resolution() -> None:
    target = FakeTarget(capacity=800.0)  # SLO holds up to 600 req/s
    outcome = search(target, settings(), CRITERIA, start_rps=100.0)
    assert target.asked[:4] == [100.0, 200.0, 400.0, 800.0]  # grow by 2 until a failure
    assert outcome.stop_reason == RESOLVED
    true = slo_rate(target)
    passing = [p.result.target_rps for p in outcome.points if p.verdict.passed]
    failing = [p.result.target_rps for p in outcome.points if not p.verdict.passed]
    lo, hi = max(passing), min(r for r in failing if r > max(passing))
    assert lo <= true <= hi
    assert hi / lo <= 1.05
    # the capacity is where the SLO is crossed between them, nearer the truth than either end
    assert lo <= outcome.capacity_rps <= hi
    assert abs(outcome.capacity_rps - true) < min(true - lo, hi - true)
    assert outcome.interval is not None and outcome.interval.as_list() == [
        pytest.approx(lo, abs=0.01),
        pytest.approx(hi, abs=0.01),
    ]
    # bisection is geometric: every step after the bracket is the mean of its neighbours
    bisected = target.asked[4]
    assert bisected == pytest.approx(math.sqrt(400.0 * 800.0))


def test_shrinks_when_the_first_rate_fails() -> None:
    target = FakeTarget(capacity=100.0)  # SLO holds up to 75
    outcome = search(target, settings(), CRITERIA, start_rps=400.0)
    assert target.asked[:3] == [400.0, 200.0, 100.0]
    assert outcome.stop_reason == RESOLVED
    assert 75 / 1.05 <= outcome.capacity_rps <= 75


def test_nothing_passes_down_to_min_rps_is_infeasible_with_the_reason() -> None:
    target = FakeTarget(capacity=5.0)
    outcome = search(target, settings(min_rps=10.0), CRITERIA, start_rps=40.0)
    assert target.asked == [40.0, 20.0, 10.0]
    assert outcome.capacity is None
    assert outcome.capacity_rps == 0.0
    assert outcome.stop_reason == BELOW_MIN
    reason = outcome.infeasible_reason()
    assert "10.0 req/s" in reason and "p95" in reason and "SLO" in reason


def test_capacity_at_max_rps_stops_there() -> None:
    target = FakeTarget(capacity=100_000.0)
    outcome = search(target, settings(max_rps=1000.0), CRITERIA, start_rps=300.0)
    assert target.asked == [300.0, 600.0, 1000.0]
    assert outcome.stop_reason == AT_MAX
    assert outcome.capacity_rps == pytest.approx(1000.0)


def test_a_config_that_cannot_beat_the_incumbent_is_pruned_after_one_step() -> None:
    target = FakeTarget(capacity=450.0)  # SLO holds up to 337.5; p95 75 ms at 420 req/s
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked == [pytest.approx(420.0)]  # just below it: within the resolution
    assert outcome.stop_reason == PRUNED
    assert "(441.0 req/s): at 420.0 req/s p95" in outcome.pruned_because
    assert outcome.capacity is None and outcome.infeasible_reason() is None


def test_a_config_within_noise_of_the_incumbent_is_not_pruned() -> None:
    target = FakeTarget(capacity=560.0)  # SLO holds up to 420: 5% under the incumbent
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert outcome.pruned_because is None
    assert 420 / 1.05 <= outcome.capacity_rps <= 420


def test_an_undecided_probe_is_no_reason_to_prune() -> None:
    """A probe whose interval holds the SLO does not show the configuration cannot beat the
    incumbent: an incumbent's twin lost 3 of 5 probes so, at p95 41-47 ms for an SLO of 40."""

    def wide(rate: float) -> StepResult:  # a window too short to decide near the SLO
        result = target(rate)
        return replace(result, latency_ci_ms=[0.7 * result.p95_ms, 1.4 * result.p95_ms])

    target = FakeTarget(capacity=520.0)  # SLO holds up to 390; p95 26 ms at the probe's 420
    outcome = search(wide, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked[:2] == [pytest.approx(420.0)] * 2  # the near miss's second look
    assert [p.verdict.outcome for p in outcome.points[:2]] == ["undecided"] * 2
    assert outcome.pruned_because is None and outcome.stop_reason != PRUNED
    assert len(outcome.points) > 2 and outcome.capacity is not None
    assert outcome.capacity_rps <= 420.0
    assert outcome.interval is not None and outcome.interval.low <= 390.0


def test_a_decided_failure_at_the_probe_still_prunes() -> None:
    def narrow(rate: float) -> StepResult:
        result = target(rate)
        return replace(result, latency_ci_ms=[0.9 * result.p95_ms, 1.1 * result.p95_ms])

    target = FakeTarget(capacity=500.0)  # p95 31.25 ms at the probe: interval 28-34 ms
    outcome = search(narrow, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked == [pytest.approx(420.0)] * 2  # a near miss, looked at twice
    assert outcome.stop_reason == PRUNED


def test_a_decided_failure_above_the_incumbents_low_end_is_no_reason_to_prune() -> None:
    """The incumbent's estimate is the luckiest of the searches so far; a configuration that
    fails just under it, decidedly, may still tie its true capacity, which its interval
    puts anywhere from 300 req/s up. So the next step runs at that low end, not at half the
    probe: it passes there, and the search goes on between the two."""
    target = FakeTarget(capacity=450.0)  # SLO holds up to 337.5; p95 75 ms at 420 req/s
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=300.0
    )
    assert target.asked[:2] == [pytest.approx(420.0), pytest.approx(300.0)]  # no second look
    assert all(300.0 < r < 420.0 for r in target.asked[2:])
    assert outcome.pruned_because is None
    assert 337.5 / 1.05 <= outcome.capacity_rps <= 337.5


def test_a_decided_failure_at_or_below_the_incumbents_low_end_prunes() -> None:
    target = FakeTarget(capacity=200.0)  # SLO holds up to 150; overloaded at 300 req/s
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=300.0
    )
    # the failed probe, then the low end itself: a shrink by half would have passed the bar
    assert target.asked == [pytest.approx(420.0), pytest.approx(300.0)]
    assert outcome.stop_reason == PRUNED
    assert "(441.0 req/s, at least 300.0 at 95%): at 300.0 req/s p95" in outcome.pruned_because


def test_a_shrink_that_stays_above_the_low_end_is_taken_as_it_is() -> None:
    target = FakeTarget(capacity=100.0)  # overloaded at the probe and at half of it
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=150.0
    )
    assert target.asked == [pytest.approx(420.0), pytest.approx(210.0), pytest.approx(150.0)]
    assert outcome.stop_reason == PRUNED


def test_a_near_miss_at_the_incumbents_low_end_gets_its_second_look_there() -> None:
    target = FakeTarget(capacity=345.0)  # p95 at 300 req/s: 38.3 ms, under 2x the SLO
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=300.0
    )
    assert target.asked == [pytest.approx(420.0)] + [pytest.approx(300.0)] * 2
    assert outcome.stop_reason == PRUNED


def test_an_incumbent_whose_interval_is_open_below_prunes_nothing() -> None:
    target = FakeTarget(capacity=100.0)  # far worse than the incumbent, yet it proves no rate
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=0.0
    )
    assert outcome.pruned_because is None
    assert 75 / 1.05 <= outcome.capacity_rps <= 75


def test_a_precise_incumbent_prunes_at_the_probe_as_before() -> None:
    target = FakeTarget(capacity=450.0)  # p95 75 ms at the probe, 420 req/s
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=430.0
    )
    assert target.asked == [pytest.approx(420.0)]
    assert outcome.stop_reason == PRUNED


def test_a_search_that_passed_is_not_pruned_by_a_later_failure_under_the_low_end() -> None:
    """Pruning stops early what cannot reach the incumbent; a pass at the probe has reached
    it. The failure under the low end that follows brackets the capacity, the search ends
    there anyway, and the trial keeps its measurement: in a `make demo`, the incumbent's own
    twin, on a slower machine, was pruned so after 6 steps."""
    target = FakeTarget(capacity=566.7)  # SLO holds up to 425: under the low end, 440
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, incumbent_low=440.0
    )
    assert target.asked[0] == pytest.approx(420.0) and outcome.points[0].verdict.passed
    assert target.asked[-1] < 440.0 and not outcome.points[-1].verdict.passed
    assert outcome.pruned_because is None and outcome.stop_reason == RESOLVED
    assert 420.0 <= outcome.interval.low <= 425.0 <= outcome.interval.high < 440.0


def test_a_config_that_beats_the_incumbent_is_searched_upward_from_it() -> None:
    target = FakeTarget(capacity=800.0)  # SLO holds up to 600
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    # past the incumbent by PAST_INCUMBENT first (it passes: 529 < 600), then by growth
    assert target.asked[:3] == [pytest.approx(420.0), pytest.approx(529.2), pytest.approx(1058.4)]
    assert outcome.pruned_because is None
    assert 600 / 1.05 <= outcome.capacity_rps <= 600


def test_a_config_near_the_incumbent_is_not_overloaded_past_it() -> None:
    target = FakeTarget(capacity=640.0)  # SLO holds up to 480: 9% past the incumbent
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked[:2] == [pytest.approx(420.0), pytest.approx(441.0 * (1 + PAST_INCUMBENT))]
    assert max(target.asked) <= 441.0 * (1 + PAST_INCUMBENT) + 1e-9  # never at growth x 420
    assert outcome.stop_reason == RESOLVED
    assert 480 / 1.05 <= outcome.capacity_rps <= 480


def test_a_climb_just_below_the_cap_is_not_held_to_a_tiny_step() -> None:
    # growth 1.1 from the probe: 420, 462, 508.2; the cap (529.2) is then within the
    # resolution of the pass, so the climb goes on by growth, to 559.0
    target = FakeTarget(capacity=2000.0)
    search(target, settings(growth=1.1), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert [round(r, 1) for r in target.asked[:4]] == [420.0, 462.0, 508.2, 559.0]


def test_a_reference_trial_is_never_pruned_at_the_incumbent() -> None:
    target = FakeTarget(capacity=500.0)
    outcome = search(
        target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0, may_prune=False
    )
    assert target.asked[:2] == [pytest.approx(420.0), pytest.approx(210.0)]
    assert outcome.pruned_because is None
    assert 375 / 1.05 <= outcome.capacity_rps <= 375


def test_pass_at_high_rate_but_fail_at_a_lower_one_is_reported_not_hidden() -> None:
    # a long batch timeout: light traffic waits for it, heavy traffic fills batches at once
    target = FakeTarget(capacity=800.0, low_rate_below=150.0, low_rate_p95_ms=40.0)
    outcome = search(
        target, settings(low_check_fraction=0.25), CRITERIA, start_rps=400.0, incumbent_rps=None
    )
    low = [p for p in outcome.points if p.result.target_rps < 150.0]
    assert len(low) == 2 and not any(p.verdict.passed for p in low)  # failed, and again
    assert outcome.capacity is None
    assert "fails at the lower" in outcome.non_monotone
    assert outcome.infeasible_reason() == outcome.non_monotone


def test_low_rate_check_passes_for_a_monotone_config_and_keeps_the_capacity() -> None:
    target = FakeTarget(capacity=800.0)
    outcome = search(target, settings(low_check_fraction=0.25), CRITERIA, start_rps=400.0)
    best = max(p.result.target_rps for p in outcome.points if p.verdict.passed)
    assert target.asked[-1] == pytest.approx(0.25 * best)
    assert outcome.non_monotone is None
    assert 600 / 1.05 <= outcome.capacity_rps <= 600


def test_a_pass_far_below_the_slo_brackets_by_growth_squared() -> None:
    target = FakeTarget(capacity=3200.0, base_ms=3.0)  # p95 3.1, 3.4, then 6 ms at 1600
    outcome = search(target, settings(), CRITERIA, start_rps=100.0)
    assert target.asked[:3] == [100.0, 400.0, 1600.0]  # then near the SLO: by growth again
    assert target.asked[3] == 3200.0
    true = slo_rate(target)
    assert outcome.interval.low <= true <= outcome.interval.high


def test_low_rate_check_is_skipped_when_a_low_rate_was_measured() -> None:
    target = FakeTarget(capacity=800.0)
    search(target, settings(low_check_fraction=0.25), CRITERIA, start_rps=100.0)
    assert target.asked.count(100.0) == 1 and min(target.asked) == 100.0


def test_max_steps_bounds_the_search() -> None:
    target = FakeTarget(capacity=800.0)
    outcome = search(target, settings(max_steps=3), CRITERIA, start_rps=100.0)
    assert len(target.asked) == 3
    assert outcome.stop_reason == MAX_STEPS
    assert outcome.capacity_rps == pytest.approx(400.0)  # the best passing so far


def on_a_22_s_budget(target: FakeTarget, start_rps: float):
    """A search with load.max_trial_s = 22 s on a clock that runs 5 s per read."""
    ticks = itertools.count(0.0, 5.0)
    return search(
        target,
        settings(max_trial_s=22.0, step_s=4.0),
        CRITERIA,
        start_rps=start_rps,
        clock=lambda: next(ticks),
    )


def test_time_budget_bounds_the_search() -> None:
    target = FakeTarget(capacity=800.0)
    outcome = on_a_22_s_budget(target, start_rps=100.0)
    assert outcome.stop_reason == TIME_BUDGET
    assert 1 <= len(target.asked) < 5
    assert "load.max_trial_s" in outcome.stop_detail


def test_a_search_with_no_pass_yet_goes_lower_past_its_time_budget() -> None:
    target = FakeTarget(capacity=800.0)  # passes up to 600 req/s
    outcome = on_a_22_s_budget(target, start_rps=2400.0)
    assert target.asked[:3] == [2400.0, 1200.0, 600.0]  # the budget alone allows two
    assert outcome.capacity is not None and outcome.capacity_rps > 0
    assert outcome.stop_reason == TIME_BUDGET  # and once something passed, it binds again


def test_a_search_that_never_passes_says_how_little_it_knows() -> None:
    target = FakeTarget(capacity=12.0)  # passes only below min_rps
    outcome = on_a_22_s_budget(target, start_rps=2400.0)
    assert outcome.capacity is None and outcome.stop_reason == TIME_BUDGET
    assert "x2 while no step has passed" in outcome.stop_detail
    lowest = min(target.asked)
    assert outcome.infeasible_reason().endswith(
        f"so its capacity is below {lowest:.1f} req/s by an unknown amount"
    )


def test_errors_and_generator_shortfall_fail_a_step_with_the_reason() -> None:
    erring = FakeTarget(capacity=800.0, error_rate=0.05)
    outcome = search(erring, settings(max_steps=1), CRITERIA, start_rps=100.0)
    assert "error rate 5.00% > 1.00%" in outcome.points[0].verdict.reason
    short = FakeTarget(capacity=800.0, offered_fraction=0.5)
    outcome = search(short, settings(max_steps=1), CRITERIA, start_rps=100.0)
    verdict = outcome.points[0].verdict
    assert not verdict.passed and not verdict.achieved
    assert verdict.reason.startswith("not achieved")


def test_on_step_sees_every_step_in_order() -> None:
    seen = []
    outcome = search(
        FakeTarget(capacity=800.0), settings(), CRITERIA, start_rps=100.0, on_step=seen.append
    )
    assert [p.step for p in seen] == list(range(len(outcome.points)))
    assert seen == outcome.points


class OneStall(FakeTarget):
    """The fake, with one stall of the machine: the first step under `below` req/s fails."""

    def __init__(self, *args, below: float, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.below = below
        self.stalled = False

    def __call__(self, rate: float):
        result = super().__call__(rate)
        if rate < self.below and not self.stalled:
            self.stalled = True
            return replace(result, p95_ms=300.0)
        return result


def test_one_stall_at_the_low_rate_check_is_retried_not_taken_for_a_slow_config() -> None:
    target = OneStall(capacity=800.0, below=200.0)
    outcome = search(target, settings(low_check_fraction=0.25), CRITERIA, start_rps=400.0)
    low = [p for p in outcome.points if p.result.target_rps < 200.0]
    assert [p.verdict.passed for p in low] == [False, True]
    assert low[0].result.target_rps == low[1].result.target_rps
    assert outcome.non_monotone is None  # the retry passed: the failure was the stall
    assert 600 / 1.05 <= outcome.capacity_rps <= 600


@dataclass
class FirstStepMisses(FakeTarget):
    """The first step (the probe, right after a restart) measures `first_p95_ms` and, when
    `errors`, fails requests too; every later step is the fake's own curve."""

    first_p95_ms: float = 0.0
    first_error_rate: float = 0.0

    def __call__(self, rate: float) -> StepResult:
        result = super().__call__(rate)
        if len(self.asked) == 1:
            return replace(result, p95_ms=self.first_p95_ms, error_rate=self.first_error_rate)
        return result


def test_a_probe_that_only_just_misses_is_measured_again_before_pruning() -> None:
    target = FirstStepMisses(capacity=800.0, first_p95_ms=25.0)  # 1.25x the SLO, then fine
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked[:3] == [pytest.approx(420.0)] * 2 + [pytest.approx(529.2)]
    assert [p.verdict.passed for p in outcome.points[:2]] == [False, True]
    assert outcome.pruned_because is None and outcome.non_monotone is None
    assert 600 / 1.05 <= outcome.capacity_rps <= 600


def test_a_near_miss_twice_is_pruned_after_the_second_look() -> None:
    target = FakeTarget(capacity=480.0)  # p95 at 420 req/s: 40 ms, 2x the SLO
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked == [pytest.approx(420.0)] * 2
    assert outcome.stop_reason == PRUNED
    assert outcome.pruned_because.endswith("p95 40.0 ms > SLO 20 ms")


@pytest.mark.parametrize(
    ("first_p95_ms", "first_error_rate"),
    [(41.0, 0.0), (25.0, 0.05)],
    ids=["far-over-the-slo", "errors-over-budget"],
)
def test_a_clear_miss_is_pruned_without_a_second_look(
    first_p95_ms: float, first_error_rate: float
) -> None:
    target = FirstStepMisses(
        capacity=800.0, first_p95_ms=first_p95_ms, first_error_rate=first_error_rate
    )
    outcome = search(target, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked == [pytest.approx(420.0)]
    assert outcome.stop_reason == PRUNED


def test_no_second_look_for_a_probe_already_measured_twice_for_a_stall() -> None:
    def remeasured(rate: float) -> StepResult:
        return replace(target(rate), remeasured_because="a 14 ms pause of the model server")

    target = FirstStepMisses(capacity=800.0, first_p95_ms=25.0)  # a near miss
    outcome = search(remeasured, settings(), CRITERIA, start_rps=100.0, incumbent_rps=441.0)
    assert target.asked == [pytest.approx(420.0)]
    assert outcome.stop_reason == PRUNED


def test_no_second_look_when_it_is_switched_off() -> None:
    target = FirstStepMisses(capacity=800.0, first_p95_ms=21.0)
    outcome = search(
        target, settings(second_look_within=0.0), CRITERIA, start_rps=100.0, incumbent_rps=441.0
    )
    assert target.asked == [pytest.approx(420.0)]
    assert outcome.stop_reason == PRUNED


def low_rate_step(offered: float, scheduled: float | None, duration_s: float = 3.0) -> StepResult:
    return StepResult(
        target_rps=28.3,
        offered_rps=offered,
        completed_rps=offered,
        goodput_rps=offered,
        p50_ms=2.0,
        p95_ms=5.0,
        p99_ms=6.0,
        error_rate=0.0,
        duration_s=duration_s,
        scheduled_rps=scheduled,
    )


def test_a_poisson_draw_short_of_the_nominal_rate_is_not_a_generator_falling_behind() -> None:
    """At 28 req/s a 3 s window holds ~85 arrivals +-9: sending all the schedule drew (26.8
    req/s) is the generator keeping up, not failing to offer the rate."""
    verdict = judge(low_rate_step(26.8, scheduled=26.8), CRITERIA)
    assert verdict.achieved and verdict.passed, verdict.reason
    # the schedule drew more than the nominal rate, and the generator sent all of it
    assert judge(low_rate_step(31.0, scheduled=31.0), CRITERIA).passed


def test_a_generator_behind_its_own_schedule_is_not_achieved() -> None:
    verdict = judge(low_rate_step(26.8, scheduled=30.0), CRITERIA)
    assert not verdict.achieved and not verdict.passed
    assert verdict.reason == (
        "not achieved: 26.8 req/s offered of 30.0 the arrival schedule held (28.3 asked): "
        "the generator fell behind it"
    )


def test_without_the_schedule_a_shortfall_within_the_poisson_noise_is_chance() -> None:
    # 3 sd of a Poisson count of ~85 is ~33%: 26.8 of 28.3 is well inside it
    assert judge(low_rate_step(26.8, scheduled=None), CRITERIA).achieved
    # a long window at a high rate leaves only the ratio's 5%
    long = replace(low_rate_step(26.8, None, duration_s=3.0), target_rps=2000.0)
    verdict = judge(replace(long, offered_rps=1800.0), CRITERIA)
    assert not verdict.achieved and "1800.0 req/s offered of 2000.0 asked" in verdict.reason

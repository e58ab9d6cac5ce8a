"""The per-trial capacity search: the highest offered rate that still passes, found in as few
load steps as possible.

1. Probe the incumbent. With a best feasible capacity so far, the first step runs just below it
   (by the resolution): near the knee of a configuration that ties it. A configuration that
   fails decidedly at or below the low end of the incumbent's 95% interval cannot beat it
   (latency and goodput only get worse as traffic grows), so its search stops there and the
   trial is pruned with that reason (`prune_bar`). A failure above that low end, or an
   undecided one (the percentile's interval holds the SLO: 3 of the 4 probes an incumbent's
   twin failed were undecided, bench/RESULTS.md), is no such evidence: the configuration may
   tie the incumbent, so its search goes on. A near miss that would prune (the SLO
   percentile within `second_look_within` times the SLO, errors within budget) is measured
   once more first, unless its window was already measured twice for a stall: the probe is
   the first step after a restart, and one stall of the machine must not discard a
   configuration that ties the incumbent. After a failure above the low end, with nothing
   passed, the next step runs at the low end itself when a shrink would go under it
   (`_to_the_bar`). Only a search that has passed nothing yet is pruned: pruning stops early
   a configuration that cannot reach the incumbent's neighbourhood, and one that passed at
   or under the low end has reached it. Its next decided failure under the low end brackets
   the capacity within about the resolution, so the search ends there anyway, and pruning
   would only discard the measurement. In one `make demo` it pruned the incumbent's own twin
   that way after 6 steps and 33 s, on a loop 9% slower: "cannot beat the best capacity so
   far", said of a configuration against itself. Reference trials are never pruned: their
   capacities are the study's yardsticks.
2. Bracket. While steps pass, the rate grows by `growth` (by its square after a decided pass
   under FAR_BELOW_SLO of the SLO: far from the knee), up to `max_rps`, but from a pass below
   the incumbent to at most PAST_INCUMBENT above it; while they fail and nothing has passed, it
   shrinks by `growth` (down to `min_rps`).
3. Bisect. With `precision` (the config always sets it): the capacity's 95% interval
   (interval.py: bounded by decided verdicts) at the geometric mean of its widest stretch
   between measured rates, until its relative half-width is within `precision` (or nothing
   is left to split but undecided steps). Without it: between the highest passing rate and
   the lowest failing rate above it, until they are within `resolution` of each other.
4. Low-rate check. A batch timeout that helps a loaded server adds latency at low traffic; so
   unless a step at or below `low_check_fraction` of the capacity's rate was already measured,
   one more step runs there, and once more if it fails (a low rate has few requests, so one
   stall of the machine can fail it; a rate measured twice counts by its latest step).

Capacity is where the SLO is crossed above the highest passing step *with every tested
step below it passing* (an undecided failure below a decided pass excepted; interval.py
interpolates it; `capacity_step_rps` keeps that step's goodput): a configuration that passes
at a high rate but fails at a lower one does not serve traffic within the SLO, and the search
says so (`non_monotone`) instead of hiding it. Every search is bounded by `max_steps` and by
`max_trial_s` (a step is not started when the time left is shorter than a step has taken so
far); until a step passes, by NO_PASS_BUDGET times `max_trial_s`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from tuner.capacity.interval import (
    CapacityInterval,
    capacity_interval,
    latest_by_rate,
    next_gap,
)
from tuner.capacity.step import CurvePoint, StepCriteria, StepResult, judge

# Why the search stopped: one slug each, and the sentence built in `SearchOutcome.stop_text`.
RESOLVED = "resolution_reached"
AT_MAX = "max_rps_reached"
BELOW_MIN = "no_pass_at_min_rps"
MAX_STEPS = "max_steps_reached"
TIME_BUDGET = "max_trial_s_reached"
PRUNED = "cannot_beat_incumbent"
PRECISE = "precision_reached"
UNDECIDED = "undecided_at_the_knee"

# Until a step passes, the search may run this many times load.max_trial_s: a search with no
# passing step has no capacity at all, not a less precise one, and a reference without one
# leaves every ratio to it unknown (TF Serving's start, probed at 2464 req/s from a batched
# incumbent, failed there and at 1232 req/s and had no time left for 616).
NO_PASS_BUDGET = 2.0
FAR_BELOW_SLO = 0.25  # a pass this far under the SLO: bracket by growth squared
# Growing from a pass below the incumbent, the next step goes at most this far past the
# incumbent: a configuration that passes near the best capacity so far most likely has its
# knee near it too, and a step at growth x that rate overloads it deeply (p95 0.5-1 s at
# 761-803 req/s for a capacity of ~410, bench/RESULTS.md), whose backlog raised the p95 of the
# steps after it by ~20% in bench/fixed_rate.py. One step past it costs no more than the
# overload step did; a configuration that passes there too grows by `growth` again.
PAST_INCUMBENT = 0.2


@dataclass(frozen=True)
class SearchSettings:
    min_rps: float
    max_rps: float
    resolution: float  # relative: stop when hi / lo <= 1 + resolution
    max_steps: int
    max_trial_s: float
    step_s: float  # the planned seconds of one step (warm-up + window), before any is timed
    growth: float = 2.0
    low_check_fraction: float = 0.25  # 0 = no low-rate check
    second_look_within: float = 2.0  # a failed probe this close to the SLO runs again; 0 = never
    step_extra_s: float = 0.0  # an undecided window is measured up to this much longer
    # stop once the capacity's 95% interval is within +-this (relative); None = bisect on the
    # verdicts alone, to the resolution
    precision: float | None = None


@dataclass
class SearchOutcome:
    points: list[CurvePoint] = field(default_factory=list)
    capacity: CurvePoint | None = None
    stop_reason: str = ""
    stop_detail: str = ""
    pruned_because: str | None = None
    non_monotone: str | None = None
    elapsed_s: float = 0.0
    interval: CapacityInterval | None = None  # the crossing's estimate and 95% interval

    @property
    def capacity_rps(self) -> float:
        """Where the SLO is crossed (interval.py), else the capacity step's goodput."""
        if self.interval is not None:
            return self.interval.estimate
        return self.capacity.result.goodput_rps if self.capacity else 0.0

    @property
    def precision_reached(self) -> float | None:
        return self.interval.half_width if self.interval is not None else None

    def infeasible_reason(self) -> str | None:
        """Why no capacity was found, in one sentence; None when there is one."""
        if self.capacity is not None or self.pruned_because:
            return None
        if self.non_monotone:
            return self.non_monotone
        if not self.points:
            return "no step was measured"
        lowest = min(self.points, key=lambda p: p.result.target_rps)
        text = (
            f"no tested rate passed; at the lowest, {lowest.result.target_rps:.1f} req/s: "
            f"{lowest.verdict.reason}"
        )
        if self.stop_reason in (TIME_BUDGET, MAX_STEPS):
            text += (
                f"; the search ran out of budget ({self.stop_detail}), so its capacity is "
                f"below {lowest.result.target_rps:.1f} req/s by an unknown amount"
            )
        return text


def capacity_point(points: list[CurvePoint]) -> tuple[CurvePoint | None, str | None]:
    """The highest passing step with every tested rate below it passing, and the sentence
    describing a pass above a failure (None when the curve is monotone).

    An undecided failure (its latency interval holds the SLO, nothing else failed) below a
    decided pass does not count: latency grows with the rate, so the decided pass above says
    the lower rate passes too, and the window that read it over the SLO was noise. Counted,
    it held a search's capacity under a rate it had passed (225 req/s undecided at p95 43.8 ms
    against a decided pass at 248 req/s, p95 28.7 ms, bench/RESULTS.md)."""
    ordered = latest_by_rate(points)  # a rate measured twice counts by its latest step
    best = None
    first_fail = None
    for i, point in enumerate(ordered):
        if not point.verdict.passed and not _outweighed(point, ordered[i + 1 :]):
            first_fail = point
            break
        if point.verdict.passed:
            best = point
    note = None
    if first_fail is not None:
        above = [
            p
            for p in ordered
            if p.verdict.passed and p.result.target_rps > first_fail.result.target_rps
        ]
        if above:
            high = max(above, key=lambda p: p.result.target_rps)
            note = (
                f"passes at {high.result.target_rps:.1f} req/s but fails at the lower "
                f"{first_fail.result.target_rps:.1f} req/s ({first_fail.verdict.reason}), so its "
                "capacity counts only up to the failing rate"
            )
    return best, note


def _outweighed(failure: CurvePoint, higher: list[CurvePoint]) -> bool:
    """An undecided failure with a decided pass at a higher rate."""
    return not failure.verdict.decided and any(
        p.verdict.passed and p.verdict.decided for p in higher
    )


def search(
    measure_step: Callable[[float], StepResult],
    settings: SearchSettings,
    criteria: StepCriteria,
    *,
    start_rps: float,
    incumbent_rps: float | None = None,
    incumbent_low: float | None = None,
    may_prune: bool = True,
    on_step: Callable[[CurvePoint], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> SearchOutcome:
    """Run steps through `measure_step(rate)` until the capacity is known to the resolution,
    the trial is pruned, or a bound is reached; `on_step` sees each step as it ends.
    `incumbent_low` is the low end of the incumbent's 95% interval (None: not recorded)."""
    s = settings
    started = clock()
    outcome = SearchOutcome()
    probing_incumbent = incumbent_rps is not None and incumbent_rps > 0
    first = incumbent_rps / (1 + s.resolution) if probing_incumbent else start_rps
    past_incumbent = incumbent_rps * (1 + PAST_INCUMBENT) if probing_incumbent else None
    rate: float | None = _clamp(first, s)
    bar = prune_bar(rate, incumbent_low) if probing_incumbent and may_prune else None

    def run(target: float) -> CurvePoint:
        result = measure_step(target)
        point = CurvePoint(len(outcome.points), result, judge(result, criteria))
        outcome.points.append(point)
        if on_step is not None:
            on_step(point)
        return point

    while rate is not None:
        stop = bound_reached(outcome, s, clock() - started)
        if stop:
            outcome.stop_reason, outcome.stop_detail = stop
            break
        at_stake = bar is not None and rate <= bar * (1 + 1e-9) and not _passed_any(outcome.points)
        point = run(rate)
        if (
            at_stake
            and not point.verdict.passed
            and _near_miss(point, criteria, s)
            and not bound_reached(outcome, s, clock() - started)
        ):
            point = run(rate)  # the second look: a rate measured twice counts by its latest
        if at_stake and not point.verdict.passed and point.verdict.decided:
            assert incumbent_rps is not None
            outcome.pruned_because = _pruned_text(point, incumbent_rps, incumbent_low)
            outcome.stop_reason, outcome.stop_detail = PRUNED, outcome.pruned_because
            break
        rate, stop = _next_rate(outcome.points, s, criteria, past_incumbent)
        rate = _to_the_bar(outcome.points, rate, bar)
        if rate is None:
            outcome.stop_reason, outcome.stop_detail = stop
    if not outcome.pruned_because:
        _low_rate_check(outcome, s, clock() - started, run)
    outcome.capacity, outcome.non_monotone = capacity_point(outcome.points)
    outcome.interval = capacity_interval(outcome.points, outcome.capacity, criteria)
    outcome.elapsed_s = clock() - started
    return outcome


def _passed_any(points: list[CurvePoint]) -> bool:
    """Whether any step has passed yet: until one has, the search may be pruned, runs to the
    prune bar and has NO_PASS_BUDGET times its time budget."""
    return any(p.verdict.passed for p in points)


def _to_the_bar(points: list[CurvePoint], rate: float | None, bar: float | None) -> float | None:
    """The prune bar instead of a shrink past it: while nothing has passed, the step after a
    failure above the bar goes to the bar itself when the shrink would go under it. A
    decided failure there prunes at once; a pass there starts the search at the knee of a
    configuration that may tie the incumbent. Halving instead took 3-5 steps (21-25 s) to
    prune two trials of one `make demo` whose incumbent's interval reached 17% under it."""
    if bar is None or rate is None or _passed_any(points):
        return rate
    last = points[-1].result.target_rps
    measured = any(abs(p.result.target_rps - bar) < 1e-9 for p in points)
    return bar if rate < bar < last and not measured else rate


def prune_bar(probe_rps: float, incumbent_low: float | None) -> float | None:
    """The highest rate at which a decided failure shows that a configuration cannot beat the
    incumbent: the low end of the incumbent's 95% interval. The incumbent serves at least that
    much (wrong with at most 2.5%), the failure says this configuration does not (at most
    2.5% more), so it is worse with 95% confidence. Not the incumbent's point estimate: the
    best of several noisy searches is the luckiest of them, and twins of an incumbent of 431
    req/s (95% interval 198-561) failed decidedly at its probe, 392 req/s, in 2 of 5 searches
    (bench/RESULTS.md). An interval open below (0) proves no rate: nothing is pruned. Without a
    recorded interval (a study from before them), the probe's own rate, as it always was."""
    if incumbent_low is None:
        return probe_rps
    return incumbent_low if incumbent_low > 0 else None


def _pruned_text(point: CurvePoint, incumbent_rps: float, incumbent_low: float | None) -> str:
    known = "" if incumbent_low is None else f", at least {incumbent_low:.1f} at 95%"
    return (
        f"cannot beat the best capacity so far ({incumbent_rps:.1f} req/s{known}): at "
        f"{point.result.target_rps:.1f} req/s {point.verdict.reason}"
    )


def _near_miss(point: CurvePoint, criteria: StepCriteria, s: SearchSettings) -> bool:
    """A failure close enough to passing that one more look is worth a step: the latency just
    over the SLO and the errors within budget (an overloaded configuration's latency is far
    over it, and errors are not noise). A step already measured twice for a stall in its
    window has had its second look: a third and fourth window cost a pruned trial of the image
    model 45 s, where the stand-in's routine collections were in every one of them."""
    latency = point.result.latency_ms(criteria.percentile)
    return (
        latency is not None
        and latency <= s.second_look_within * criteria.slo_ms
        and point.result.error_rate <= criteria.max_error_rate
        and not point.result.remeasured_because
    )


def _clamp(rate: float, s: SearchSettings) -> float:
    return min(max(rate, s.min_rps), s.max_rps)


def bound_reached(
    outcome: SearchOutcome, s: SearchSettings, elapsed: float
) -> tuple[str, str] | None:
    """Why no further step may start after `elapsed` seconds (a slug and its sentence); None
    while one may. Only this reads the budget: the next rate never depends on it, so a search
    with a smaller budget runs a prefix of a larger one's steps (bench/trial_budget.py)."""
    n = len(outcome.points)
    if n >= s.max_steps:
        return MAX_STEPS, f"stopped after load.max_steps = {s.max_steps} steps"
    per_step = max(s.step_s, elapsed / n) if n else s.step_s
    nothing_passed = not _passed_any(outcome.points)
    budget = s.max_trial_s * (NO_PASS_BUDGET if nothing_passed else 1.0)
    if n and elapsed + per_step > budget:
        return TIME_BUDGET, (
            f"stopped after {elapsed:.0f} s: another step (~{per_step:.0f} s) would pass "
            f"load.max_trial_s = {s.max_trial_s:g} s"
            + (f" (x{NO_PASS_BUDGET:g} while no step has passed)" if nothing_passed else "")
        )
    return None


def _next_rate(
    points: list[CurvePoint],
    s: SearchSettings,
    criteria: StepCriteria,
    past_incumbent: float | None = None,
) -> tuple[float | None, tuple[str, str]]:
    """The next rate to measure, or None and why the search is over; a climb from below
    `past_incumbent` stops there first."""
    passed = [p.result.target_rps for p in points if p.verdict.passed]
    lo = max(passed, default=None)
    failed_above = [
        p.result.target_rps
        for p in points
        if not p.verdict.passed and (lo is None or p.result.target_rps > lo)
    ]
    hi = min(failed_above, default=None)
    if hi is None:  # nothing failed above the best pass: grow
        assert lo is not None
        if lo >= s.max_rps * (1 - 1e-9):
            return None, (
                AT_MAX,
                f"passed at load.max_rps = {s.max_rps:g} req/s: capacity is at least that",
            )
        grown = lo * _growth(points, lo, s, criteria)
        if past_incumbent is not None and lo * (1 + s.resolution) < past_incumbent:
            grown = min(grown, past_incumbent)  # never a step smaller than the resolution
        return min(grown, s.max_rps), ("", "")
    if lo is None:  # nothing passed yet: shrink
        if hi <= s.min_rps * (1 + 1e-9):
            return None, (BELOW_MIN, f"failed at load.min_rps = {s.min_rps:g} req/s")
        return max(hi / s.growth, s.min_rps), ("", "")
    if s.precision is not None:
        return _narrow(points, s, criteria, hi)
    if hi / lo <= 1 + s.resolution:
        return None, (
            RESOLVED,
            f"passes at {lo:.1f} req/s, fails at {hi:.1f} req/s: within "
            f"load.resolution = {s.resolution:g}",
        )
    return math.sqrt(lo * hi), ("", "")


def _growth(points: list[CurvePoint], lo: float, s: SearchSettings, criteria: StepCriteria):
    """growth, or growth squared after a decided pass with its SLO percentile under
    FAR_BELOW_SLO of the SLO: a server that idles there is far from its knee, and each step
    spent climbing to it is one less for the knee (the first search of a study climbed from
    100 req/s in five steps and had none left to bisect)."""
    point = next(p for p in reversed(points) if p.verdict.passed and p.result.target_rps == lo)
    latency = point.result.latency_ms(criteria.percentile)
    if point.verdict.decided and latency is not None and latency < FAR_BELOW_SLO * criteria.slo_ms:
        return s.growth**2
    return s.growth


def _narrow(
    points: list[CurvePoint], s: SearchSettings, criteria: StepCriteria, hi: float
) -> tuple[float | None, tuple[str, str]]:
    """Bisect the capacity's interval (bounded by decided verdicts) until it is within
    load.precision: a step where it is widest between the rates measured so far."""
    assert s.precision is not None
    best, _ = capacity_point(points)
    ci = capacity_interval(points, best, criteria)
    if ci is None or best is None:
        return None, (UNDECIDED, "no passing step to start the capacity's interval from")
    width = ci.half_width
    if width is not None and width <= s.precision:
        return None, (
            PRECISE,
            f"capacity {ci.estimate:.1f} req/s, 95% interval {ci.low:.1f}-{ci.high:.1f}: "
            f"within +-{width:.1%} (load.precision = {s.precision:g})",
        )
    served = best.result.goodput_rps / best.result.target_rps if best.result.target_rps else 1.0
    if ci.high is None:  # the failures above are undecided: look just above them
        above = min(hi * (1 + 2 * s.precision), s.max_rps)
        if any(abs(p.result.target_rps - above) < 1e-9 for p in points) or above <= hi:
            return None, (UNDECIDED, "the steps above the capacity stay undecided")
        return above, ("", "")
    gap = next_gap(points, ci, served)
    if gap is None or gap[1] / gap[0] <= 1 + s.precision:
        return None, (
            UNDECIDED,
            f"the steps between {ci.low:.1f} and {ci.high:.1f} req/s stay undecided: the "
            f"capacity is known to +-{(width or 0):.1%}",
        )
    return math.sqrt(gap[0] * gap[1]), ("", "")


def _low_rate_check(
    outcome: SearchOutcome,
    s: SearchSettings,
    elapsed: float,
    run: Callable[[float], CurvePoint],
) -> None:
    """One step well below the capacity, unless one was measured already: a config that is
    fine when loaded may still break the SLO when traffic is light (a long batch timeout)."""
    if s.low_check_fraction <= 0:
        return
    best, _ = capacity_point(outcome.points)
    if best is None:
        return
    target = max(s.min_rps, s.low_check_fraction * best.result.target_rps)
    if any(p.result.target_rps <= target * (1 + 1e-9) for p in outcome.points):
        return
    if bound_reached(outcome, s, elapsed):
        return
    if run(target).verdict.passed or bound_reached(outcome, s, elapsed):
        return
    # Few requests arrive at a low rate, so one stall of the machine can fail the step: only a
    # second failure at the same rate says the configuration itself is slow at light traffic.
    run(target)

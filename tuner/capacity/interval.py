"""Where the SLO is crossed, and a 95% interval around it.

The estimate interpolates the SLO percentile between the highest passing step and the lowest
failing step above it, so the capacity is not the bisection grid point where one window
happened to fail. It interpolates the logarithm of the latency: near a knee latency is
convex in the rate, and a failing step's percentile is often ten times the SLO, so a
straight line in milliseconds crosses the SLO early. On simulated queues of known capacity
(bench/interval_coverage.py) that read a steep knee 2.8% low from above and scattered a
study's first search by 7.3% rms; in logarithms, +0.5% and 3.0%. The reciprocal of the
latency, exact for an M/M/1-like knee, overshot by up to 7%.

The interval is bracketed by decided verdicts: its low end is the highest rate whose
percentile interval lies below the SLO (every rate below it passing), its high end the lowest
rate above that whose interval lies above it. Each verdict is wrong with probability at most
2.5% on its side (a two-sided 95% interval), so for a latency that grows with the rate the
crossing lies between them with probability at least 95% (Bonferroni). Undecided steps lie
inside. No decided failure above (the search stopped at load.max_rps or its budget): the
interval is open above (`high` None).

A low rate's window has too few requests for its own interval to decide (a 3-s window needs
~146 x its variance inflation requests to pass a p95 at all), so the low end may also be
decided by steps pooled: the steps from a rate up to the capacity step, whose requests within
the SLO, added up, clear the rank test of one window (percentile_ci.pooled_pass; latency grows
with the rate, so the steps above a rate speak for it). In simulation (an M/D/1 queue, searches
of 4-5 steps around the crossing) that closed the low end in 43-86% of searches where single
windows closed 28-62%, and put it above the true crossing no more often (0-4.5%).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from tuner.capacity.step import CurvePoint, StepCriteria
from tuner.percentile_ci import SloTally, pooled_pass


@dataclass(frozen=True)
class CapacityInterval:
    estimate: float  # goodput at the crossing, req/s
    low: float
    high: float | None

    @property
    def half_width(self) -> float | None:
        """Relative: (high - low) / 2 / estimate; None when open above."""
        if self.high is None or self.estimate <= 0:
            return None
        return (self.high - self.low) / 2 / self.estimate

    def as_list(self) -> list[float | None]:
        return [round(self.low, 2), None if self.high is None else round(self.high, 2)]


def latest_by_rate(points: list[CurvePoint]) -> list[CurvePoint]:
    """One point per rate (a rate measured twice counts by its latest step), by rate."""
    latest = {p.result.target_rps: p for p in sorted(points, key=lambda p: p.step)}
    return sorted(latest.values(), key=lambda p: p.result.target_rps)


def capacity_interval(
    points: list[CurvePoint], best: CurvePoint | None, criteria: StepCriteria
) -> CapacityInterval | None:
    """The crossing and its interval, given the capacity step `best`; None without one."""
    if best is None:
        return None
    ordered = latest_by_rate(points)
    rate = best.result.target_rps
    low = 0.0
    for p in ordered:
        if p.result.target_rps > rate:
            break
        if p.verdict.passed and p.verdict.decided:
            low = p.result.target_rps
    low = max(low, pooled_low(ordered, rate, criteria.percent))
    above = [p for p in ordered if p.result.target_rps > rate]
    high = next(
        (p.result.target_rps for p in above if p.verdict.decided and not p.verdict.passed), None
    )
    first_fail = above[0] if above else None
    estimate = _interpolate(best, first_fail, criteria)
    estimate = max(low, estimate if high is None else min(estimate, high))
    # In goodput, as the capacity always was: the capacity step's served share of its rate.
    served = best.result.goodput_rps / rate if rate > 0 else 1.0
    return CapacityInterval(
        estimate * served, low * served, None if high is None else high * served
    )


def pooled_low(ordered: list[CurvePoint], rate: float, percent: float) -> float:
    """The highest rate r at or under `rate` whose steps from r to `rate`, pooled, pass
    decidedly; 0 when none does. Steps without a tally (older studies) are left out."""
    tallied = [
        (p.result.target_rps, SloTally(p.result.requests, within, inflation))
        for p in ordered
        if p.result.target_rps <= rate
        and (within := p.result.within_slo) is not None
        and (inflation := p.result.latency_inflation) is not None
    ]
    for i in range(len(tallied) - 1, -1, -1):
        if pooled_pass([tally for _, tally in tallied[i:]], percent):
            return tallied[i][0]
    return 0.0


def _interpolate(best: CurvePoint, fail: CurvePoint | None, criteria: StepCriteria) -> float:
    r1 = best.result.target_rps
    if fail is None:
        return r1
    l1 = best.result.latency_ms(criteria.percentile)
    l2 = fail.result.latency_ms(criteria.percentile)
    r2 = fail.result.target_rps
    # A failure on errors or goodput, or a latency that does not rise: the pass stands.
    if l1 is None or l2 is None or l2 <= criteria.slo_ms or l2 <= l1 or l1 <= 0:
        return r1
    share = min(1.0, max(0.0, math.log(criteria.slo_ms / l1) / math.log(l2 / l1)))
    return r1 + share * (r2 - r1)


def next_gap(points: list[CurvePoint], interval: CapacityInterval, served: float):
    """The widest stretch between measured rates inside the interval (target rates): where a
    step narrows it most. None when the interval is open."""
    if interval.high is None or served <= 0:
        return None
    low, high = interval.low / served, interval.high / served
    inside = sorted(
        {p.result.target_rps for p in points if low < p.result.target_rps < high} | {low, high}
    )
    pairs = [(a, b) for a, b in itertools.pairwise(inside) if a > 0]
    return max(pairs, key=lambda ab: ab[1] / ab[0], default=None)

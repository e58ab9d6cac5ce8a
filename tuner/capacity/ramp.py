"""The unmeasured ramp before a restarted server's first measured step: traffic rising to the
first rate, then held there until the server is at a steady state, within a bound.

A fixed ramp is not enough on a loaded machine: a server slow for its first seconds (first
batches, allocations, connections) can still be cold when the window opens, and the probe of
a configuration identical to the incumbent fails. So the ramp holds the rate, one interval
at a time, until the last interval is *settled*: its SLO percentile within the SLO, its
errors within the error budget, its latency no longer falling by more than SETTLE_TOLERANCE
against the interval before (a cold server's latencies fall as it warms), and no more in
flight than the rate keeps there (nothing left over from the cold start). Two intervals at
the rate running over the SLO, the latter not falling, end it too: that server is not
warming but too slow at this rate (a probe about to fail, most often), and holding it longer
would only cost the trial time. A target that does neither ends the ramp at its bound. The
outcome is recorded; the ramp never decides a verdict, the measured step does.

On a warm server the ramp costs FRACTIONS plus one interval at the rate (the rate's first
interval is compared with the last fraction's: latency rising with the rate is not falling).
The ramp is drained like any step (step_runner.py), so the first measured step does not
inherit its backlog; after a settled ramp that is a fraction of a second.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from tuner.capacity.step import StepCriteria
from tuner.load import IntervalSample, LoadProfile

FRACTIONS = (0.25, 0.5)  # of the first rate, one interval each, before the rate itself
SETTLE_TOLERANCE = 0.25  # a fall of more than this share against the interval before: warming
SETTLE_WARMUPS = 3  # the bound at the rate: this many step warm-ups...
SETTLE_MIN_INTERVALS = 4  # ...and never fewer intervals than this
IN_FLIGHT_SLO_FACTOR = 2.0  # in flight at most twice what the rate keeps there at the SLO...
IN_FLIGHT_FLOOR = 8  # ...or this many (a Poisson burst at a low rate)

SETTLED = "settled"  # steady within the SLO
OVER_SLO = "over_slo"  # steady over the SLO: not warming, too slow at this rate
BOUND = "bound"  # still changing when the bound came


@dataclass(frozen=True)
class RampRecord:
    """What the ramp did, for the step that follows it."""

    seconds: float  # wall clock of the whole ramp
    outcome: str  # SETTLED, OVER_SLO or BOUND
    intervals_at_rate: int

    @property
    def settled(self) -> bool:
        return self.outcome == SETTLED


def bound_intervals(profile: LoadProfile) -> int:
    """How long the ramp may hold the rate: derived from the step's warm-up, no key of its own."""
    return max(SETTLE_MIN_INTERVALS, SETTLE_WARMUPS * profile.warmup_intervals)


def settled(
    before: IntervalSample | None,
    last: IntervalSample,
    rate: float,
    criteria: StepCriteria | None,
) -> bool:
    """Is the server steady at `rate` after `last`? Without criteria (no SLO known), only the
    trend and the arrivals count."""
    if last.skipped:
        return False  # the in-flight ceiling was hit: a backlog, not a steady state
    percentile = criteria.percentile if criteria is not None else "p95"
    latency = getattr(last, f"{percentile}_ms")
    if latency is None:
        return False
    if criteria is not None:
        if latency > criteria.slo_ms:
            return False
        if last.failures > criteria.max_error_rate * last.requests:
            return False  # answering errors (a cold server's timeouts, say) is not steady
        ceiling = max(IN_FLIGHT_FLOOR, IN_FLIGHT_SLO_FACTOR * rate * criteria.slo_ms / 1000)
        if last.in_flight_max is not None and last.in_flight_max > ceiling:
            return False
    previous = getattr(before, f"{percentile}_ms") if before is not None else None
    if previous is None:
        return before is not None  # nothing answered before, everything answers now
    return latency >= (1.0 - SETTLE_TOLERANCE) * previous


def over_slo(before: IntervalSample, last: IntervalSample, criteria: StepCriteria | None) -> bool:
    """Two intervals at the rate over the SLO, the latter not falling: steady, too slow."""
    if criteria is None:
        return False
    previous = getattr(before, f"{criteria.percentile}_ms")
    latency = getattr(last, f"{criteria.percentile}_ms")
    if previous is None or latency is None:
        return False  # nothing answered: no trend to read, the bound decides
    slo = criteria.slo_ms
    return previous > slo and latency > slo and latency >= (1.0 - SETTLE_TOLERANCE) * previous


def ramp_up(
    generator: Any, profile: LoadProfile, rate: float, criteria: StepCriteria | None
) -> RampRecord:
    """Run the ramp on `generator` (nothing of it is measured) and say how it went."""
    started = time.monotonic()
    before: IntervalSample | None = None
    for fraction in FRACTIONS:
        result = generator.step(rate * fraction, warmup_s=0.0, measure_s=profile.interval_s)
        before = result.samples[-1] if result.samples else None
    state: dict[str, Any] = {"before": before, "outcome": BOUND, "seen": 0}

    def on_interval(sample: IntervalSample) -> bool:
        state["seen"] += 1
        before = state["before"]
        if settled(before, sample, rate, criteria):
            state["outcome"] = SETTLED
        elif state["seen"] >= 2 and over_slo(before, sample, criteria):
            state["outcome"] = OVER_SLO
        state["before"] = sample
        return state["outcome"] == BOUND

    generator.step(
        rate,
        on_interval=on_interval,
        warmup_s=0.0,
        measure_s=bound_intervals(profile) * profile.interval_s,
    )
    return RampRecord(
        seconds=round(time.monotonic() - started, 3),
        outcome=str(state["outcome"]),
        intervals_at_rate=int(state["seen"]),
    )

"""The unmeasured ramp before a restarted server's first measured step: traffic rising to the
first rate, then held there until the server is at a steady state, within a bound.

A fixed ramp is not enough on a loaded machine: a server slow for its first seconds (first
batches, allocations, connections) can still be cold when the window opens, and the probe of
a configuration identical to the incumbent fails. So the ramp holds the rate, one interval at
a time, until the last interval is *settled*: its SLO percentile within the SLO and no longer
falling by more than SETTLE_TOLERANCE against the interval before (a cold server's latencies
fall as it warms), and no more in flight than the rate keeps there (nothing left over from
the cold start). A target that never settles ends the ramp at its bound, recorded as such:
the ramp never decides a verdict, the measured step does.

On a warm server the ramp costs FRACTIONS plus one interval at the rate (the rate's first
interval is compared with the last fraction's: latency rising with the rate is not falling).
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


@dataclass(frozen=True)
class RampRecord:
    """What the ramp did, for the step that follows it."""

    seconds: float  # wall clock of the whole ramp
    settled: bool  # False: it ended at its bound with the server not yet steady
    intervals_at_rate: int


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
        ceiling = max(IN_FLIGHT_FLOOR, IN_FLIGHT_SLO_FACTOR * rate * criteria.slo_ms / 1000)
        if last.in_flight_max is not None and last.in_flight_max > ceiling:
            return False
    previous = getattr(before, f"{percentile}_ms") if before is not None else None
    if previous is None:
        return before is not None  # nothing answered before, everything answers now
    return latency >= (1.0 - SETTLE_TOLERANCE) * previous


def ramp_up(
    generator: Any, profile: LoadProfile, rate: float, criteria: StepCriteria | None
) -> RampRecord:
    """Run the ramp on `generator` (nothing of it is measured) and say how it went."""
    started = time.monotonic()
    before: IntervalSample | None = None
    for fraction in FRACTIONS:
        result = generator.step(rate * fraction, warmup_s=0.0, measure_s=profile.interval_s)
        before = result.samples[-1] if result.samples else None
    state = {"before": before, "settled": False, "seen": 0}

    def on_interval(sample: IntervalSample) -> bool:
        state["seen"] += 1
        state["settled"] = settled(state["before"], sample, rate, criteria)
        state["before"] = sample
        return not state["settled"]

    generator.step(
        rate,
        on_interval=on_interval,
        warmup_s=0.0,
        measure_s=bound_intervals(profile) * profile.interval_s,
    )
    return RampRecord(
        seconds=round(time.monotonic() - started, 3),
        settled=bool(state["settled"]),
        intervals_at_rate=int(state["seen"]),
    )

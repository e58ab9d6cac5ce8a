"""A deterministic stand-in for one load step, for the pure logic tests of the search.

Latency grows as 1 / (1 - utilisation) (an M/M/1-like curve) up to the capacity; past it the
queue grows without bound, so latency is huge and goodput is the capacity. `low_rate_p95_ms`
models a batch timeout that hurts at light traffic (a non-monotone curve).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.capacity import StepResult


@dataclass
class FakeTarget:
    capacity: float
    base_ms: float = 5.0
    low_rate_below: float = 0.0  # rates under this see `low_rate_p95_ms`
    low_rate_p95_ms: float = 0.0
    error_rate: float = 0.0
    offered_fraction: float = 1.0  # a generator that cannot send the full rate
    asked: list[float] = field(default_factory=list)

    def __call__(self, rate: float) -> StepResult:
        self.asked.append(rate)
        offered = rate * self.offered_fraction
        if offered < self.capacity:
            p95 = self.base_ms / (1 - offered / self.capacity)
            goodput = offered * (1 - self.error_rate)
        else:
            p95 = 10_000.0
            goodput = self.capacity * (1 - self.error_rate)
        if rate < self.low_rate_below:
            p95 = self.low_rate_p95_ms
        return StepResult(
            target_rps=rate,
            offered_rps=offered,
            completed_rps=goodput / (1 - self.error_rate) if self.error_rate < 1 else 0.0,
            goodput_rps=goodput,
            p50_ms=p95 / 2,
            p95_ms=p95,
            p99_ms=p95 * 1.5,
            error_rate=self.error_rate,
            duration_s=3.0,
            elapsed_s=4.0,
        )

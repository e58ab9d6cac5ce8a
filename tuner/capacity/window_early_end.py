"""Ending a failing step early, only once its window cannot pass any more.

A pruned trial's single step and every overloaded step of a search would otherwise run their
whole window. The rule is a bound, not a guess: from each measured interval's percentiles, a
lower bound on how many of its requests broke the SLO (more than half when its p50 did, more
than 5% when its p95 did, more than 1% when its p99 did) and its failures, against an upper
bound on the requests the whole window can hold (the target rate over the window, plus 20%
for Poisson scatter, plus every request the in-flight ceiling lets queue up). When the
requests known to be late or failed already exceed the share the criteria allow of that upper
bound, the window fails whatever its remaining intervals do. An interval that skipped
arrivals at the in-flight ceiling makes the step not achieved, so it ends too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.capacity.step import StepCriteria

POISSON_MARGIN = 1.2
_SHARE_ABOVE = (("p50_ms", 0.5), ("p95_ms", 0.05), ("p99_ms", 0.01))
_PERCENTILE_SHARE = {"p50": 0.5, "p95": 0.05, "p99": 0.01}


@dataclass
class EarlyFail:
    criteria: StepCriteria
    target_rps: float
    measure_s: float
    max_in_flight: int
    late: float = 0.0
    failures: int = 0
    reason: str | None = None
    _measured: int = field(default=0)

    @property
    def window_bound(self) -> float:
        return self.target_rps * self.measure_s * POISSON_MARGIN + self.max_in_flight

    def check(self, sample: object) -> str | None:
        """Feed each measured interval; the reason once the window can no longer pass."""
        self._measured += 1
        if getattr(sample, "skipped", None):
            self.reason = "ended early: arrivals were skipped at the in-flight ceiling"
            return self.reason
        n = int(getattr(sample, "requests", 0))
        self.failures += int(getattr(sample, "failures", 0))
        slo = self.criteria.slo_ms
        for attr, share in _SHARE_ABOVE:
            value = getattr(sample, attr, None)
            if value is not None and value > slo:
                self.late += share * n
                break
        allowed_late = _PERCENTILE_SHARE[self.criteria.percentile] * self.window_bound
        if self.late > allowed_late:
            self.reason = (
                f"ended early after {self._measured} interval(s): over {self.late:.0f} "
                f"requests above the SLO, more than the window's {self.criteria.percentile} "
                "allows"
            )
        elif self.failures > self.criteria.max_error_rate * self.window_bound:
            self.reason = (
                f"ended early after {self._measured} interval(s): {self.failures} failed "
                "requests, more than the window's error budget allows"
            )
        return self.reason

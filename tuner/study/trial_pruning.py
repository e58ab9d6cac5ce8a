"""When to stop a trial early: only when its per-interval figures make it clearly hopeless.

Optuna's pruners compare the reported throughput alone, which would stop a slower but
feasible configuration while fast, SLO-breaking ones run on. These rules know the SLO, need
several consecutive measured intervals (one slow second is noise) and never stop a reference
trial, whose figures are the study's yardstick.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRUNE_AFTER_INTERVALS = 3
INFEASIBLE_FACTOR = 3.0  # a latency this far over the SLO is not noise
HOPELESS_FRACTION = 0.5  # throughput this far below the best feasible trial is not noise either


@dataclass
class EarlyStop:
    """Feed it each measured interval; it answers why to stop, or None to go on."""

    percentile: str
    slo_ms: float
    best_feasible_rps: float | None
    is_reference: bool = False
    _over_slo: int = 0
    _rps: list[float] = field(default_factory=list)

    def check(self, rps: float, latency_ms: float | None) -> str | None:
        self._rps.append(rps)
        if self.is_reference:
            return None
        too_slow = latency_ms is not None and latency_ms > INFEASIBLE_FACTOR * self.slo_ms
        self._over_slo = self._over_slo + 1 if too_slow else 0
        if self._over_slo >= PRUNE_AFTER_INTERVALS:
            return (
                f"{self.percentile} above {INFEASIBLE_FACTOR:g}x the SLO for "
                f"{self._over_slo} intervals"
            )
        best = self.best_feasible_rps
        recent = self._rps[-PRUNE_AFTER_INTERVALS:]
        if (
            best is not None
            and len(recent) == PRUNE_AFTER_INTERVALS
            and max(recent) < HOPELESS_FRACTION * best
        ):
            return (
                f"throughput under {HOPELESS_FRACTION:.0%} of the best feasible trial "
                f"({best:.1f} req/s) for {PRUNE_AFTER_INTERVALS} intervals"
            )
        return None

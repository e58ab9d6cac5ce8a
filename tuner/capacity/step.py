"""One load step at a target rate, and whether it passes: within the SLO, within the error
budget, and keeping up with the traffic that was offered.

A step that did not offer the rate it was asked for (the generator hit its in-flight ceiling,
or sent fewer arrivals than asked) is "not achieved" and fails with that reason: its latency
says nothing about the target rate, and quietly becoming a closed loop would hide exactly the
overload the search is looking for.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class StepResult:
    """The measured window of one step (its warm-up excluded)."""

    target_rps: float  # the rate asked for
    offered_rps: float  # arrivals actually sent per second
    completed_rps: float  # responses per second, failures included
    goodput_rps: float  # successful responses per second
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float
    requests: int = 0
    failures: int = 0
    failures_by_code: dict[str, int] = field(default_factory=dict)
    in_flight_limit_hit: bool = False
    in_flight_detail: str | None = None
    mean_batch_size: float | None = None
    cpu_model_server_percent: float | None = None
    cpu_service_percent: float | None = None
    cpu_load_generator_percent: float | None = None
    duration_s: float = 0.0  # the measured window (shorter when it ended early)
    ended_early: str | None = None  # why the window was cut short: it could not pass any more
    # the generator could not keep the arrival schedule (CPU): figures are less trustworthy
    generator_saturated: bool = False
    saturation_reason: str | None = None
    elapsed_s: float = 0.0  # wall clock of the whole step, warm-up and scrapes included

    def latency_ms(self, percentile: str) -> float | None:
        return getattr(self, f"{percentile}_ms")


@dataclass(frozen=True)
class StepCriteria:
    percentile: str
    slo_ms: float
    max_error_rate: float
    min_goodput_ratio: float  # goodput / offered, and offered / target, at least this


@dataclass(frozen=True)
class Verdict:
    passed: bool
    achieved: bool  # the generator offered the target rate
    reason: str | None  # why it failed; None when it passed


def judge(step: StepResult, c: StepCriteria) -> Verdict:
    """Every failed criterion, in one sentence, so the curve explains itself."""
    reasons = []
    achieved = True
    if step.in_flight_limit_hit:
        achieved = False
        reasons.append(
            "not achieved: the load generator hit its in-flight ceiling"
            + (f" ({step.in_flight_detail})" if step.in_flight_detail else "")
        )
    elif step.offered_rps < c.min_goodput_ratio * step.target_rps:
        achieved = False
        reasons.append(
            f"not achieved: {step.offered_rps:.1f} req/s offered of {step.target_rps:.1f} asked"
        )
    latency = step.latency_ms(c.percentile)
    if latency is None:
        reasons.append("no successful request, so no latency")
    elif latency > c.slo_ms:
        reasons.append(f"{c.percentile} {latency:.1f} ms > SLO {c.slo_ms:g} ms")
    if step.error_rate > c.max_error_rate:
        reasons.append(f"error rate {step.error_rate:.2%} > {c.max_error_rate:.2%}")
    if step.goodput_rps < c.min_goodput_ratio * step.offered_rps:
        reasons.append(
            f"goodput {step.goodput_rps:.1f} req/s < {c.min_goodput_ratio:.0%} of "
            f"{step.offered_rps:.1f} offered"
        )
    if step.ended_early and not reasons:
        reasons.append(step.ended_early)
    return Verdict(passed=not reasons, achieved=achieved, reason="; ".join(reasons) or None)


@dataclass(frozen=True)
class CurvePoint:
    """One step of a trial's search: what was asked, what was measured, the verdict."""

    step: int
    result: StepResult
    verdict: Verdict

    def as_dict(self) -> dict[str, Any]:
        """JSON-able, rounded: the `capacity_curve` user attr holds a list of these."""
        r = self.result
        data = {k: v for k, v in asdict(r).items() if k != "failures_by_code"}
        rounded: dict[str, Any] = {"step": self.step}
        for key, value in data.items():
            rounded[key] = (
                round(value, 3 if key == "error_rate" else 2) if isinstance(value, float) else value
            )
        rounded["failures_by_code"] = dict(r.failures_by_code)
        rounded["passed"] = self.verdict.passed
        rounded["achieved"] = self.verdict.achieved
        rounded["reason"] = self.verdict.reason
        return rounded

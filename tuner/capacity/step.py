"""One load step at a target rate, and whether it passes: within the SLO, within the error
budget, and keeping up with the traffic that was offered.

A step that did not offer the rate it was asked for (the generator hit its in-flight ceiling,
or sent fewer arrivals than its schedule held) is "not achieved" and fails with that reason:
its latency says nothing about the target rate, and quietly becoming a closed loop would hide
exactly the overload the search is looking for. What was sent is compared with what the
Poisson schedule drew for the window, not with rate x seconds: at 28 req/s a 3 s window holds
~85 arrivals give or take 9, so a draw 5% short is chance, not a generator falling behind.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

POISSON_SDS = 3.0  # without the schedule's count: a shortfall this many sd of the draw is chance


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
    # the SLO percentile's 95% interval from the window's requests; None bound = unbounded
    latency_ci_ms: list[float | None] | None = None
    extended_s: float = 0.0  # measured longer than the window because the verdict was open
    # the window's requests at or under the SLO, and the variance inflation of the SLO
    # percentile's interval: what pools steps into one verdict (percentile_ci.pooled_pass)
    within_slo: int | None = None
    latency_inflation: float | None = None
    # per process (service, model_server, load_generator, tuner): its longest pause in the window
    pause_max_ms: dict[str, float] = field(default_factory=dict)
    # the same for the pauses that stop a process whatever its load (collections, the host's
    # slow spells; not event-loop lag): only these send a failed step to a second window
    stall_max_ms: dict[str, float] = field(default_factory=dict)
    remeasured_because: str | None = None  # the first window's pause, when it was measured again
    not_drained: str | None = None  # the drain before the step did not finish: nothing measured
    drain_s: float | None = None  # how long the drain before the step took
    # arrivals the schedule held in the window per second (None: not known, e.g. closed loop)
    scheduled_rps: float | None = None
    # the first step after a restart: how long its unmeasured ramp took, and how it ended:
    # settled (steady within the SLO), over_slo (steady over it) or bound (still changing)
    ramp_s: float | None = None
    ramp_outcome: str | None = None

    def latency_ms(self, percentile: str) -> float | None:
        return getattr(self, f"{percentile}_ms")


@dataclass(frozen=True)
class StepCriteria:
    percentile: str
    slo_ms: float
    max_error_rate: float
    min_goodput_ratio: float  # goodput / offered, and offered / target, at least this

    @property
    def percent(self) -> float:
        """The SLO percentile as a number: 95.0 for "p95"."""
        return float(self.percentile.removeprefix("p"))


@dataclass(frozen=True)
class Verdict:
    passed: bool  # decided pass, or (undecided) the point estimate within the SLO
    achieved: bool  # the generator offered the target rate
    reason: str | None  # why it failed; None when it passed
    # False: the SLO lies inside the percentile's 95% interval, so the window cannot tell
    decided: bool = True
    note: str | None = None  # why it is undecided

    @property
    def outcome(self) -> str:
        if not self.decided:
            return "undecided"
        return "pass" if self.passed else "fail"


def judge(step: StepResult, c: StepCriteria) -> Verdict:
    """Every failed criterion, in one sentence, so the curve explains itself. The latency
    criterion is decided by the percentile's interval: above the SLO fails, below passes, and
    an interval that holds the SLO leaves the step undecided (judged by its point estimate,
    flagged) when nothing else failed it."""
    if step.not_drained:
        return Verdict(passed=False, achieved=False, reason=step.not_drained)
    reasons = []
    achieved = True
    undecided = None
    if step.in_flight_limit_hit:
        achieved = False
        reasons.append(
            "not achieved: the load generator hit its in-flight ceiling"
            + (f" ({step.in_flight_detail})" if step.in_flight_detail else "")
        )
    elif shortfall := _behind_schedule(step, c):
        achieved = False
        reasons.append(f"not achieved: {shortfall}")
    latency = step.latency_ms(c.percentile)
    if latency is None:
        reasons.append("no successful request, so no latency")
    elif step.latency_ci_ms is not None and holds_slo(step.latency_ci_ms, c.slo_ms):
        low, high = step.latency_ci_ms
        undecided = (
            f"{c.percentile} {latency:.1f} ms, its 95% interval {_ms(low)}-{_ms(high)} ms "
            f"holds the SLO {c.slo_ms:g} ms"
        )
        if latency > c.slo_ms:
            reasons.append(f"{c.percentile} {latency:.1f} ms > SLO {c.slo_ms:g} ms (undecided)")
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
    others = [r for r in reasons if not r.endswith("(undecided)")]
    return Verdict(
        passed=not reasons,
        achieved=achieved,
        reason="; ".join(reasons) or None,
        decided=undecided is None or bool(others),
        note=undecided if undecided is not None and not others else None,
    )


def _behind_schedule(step: StepResult, c: StepCriteria) -> str | None:
    """Did the generator send less than it was due to? Due is what the arrival schedule held
    in the window; when that is not known, the nominal rate less POISSON_SDS standard
    deviations of a Poisson count over the window."""
    if step.scheduled_rps is not None:
        if step.offered_rps >= c.min_goodput_ratio * step.scheduled_rps:
            return None
        return (
            f"{step.offered_rps:.1f} req/s offered of {step.scheduled_rps:.1f} the arrival "
            f"schedule held ({step.target_rps:.1f} asked): the generator fell behind it"
        )
    slack = 1.0 - c.min_goodput_ratio
    if step.duration_s > 0 and step.target_rps > 0:
        noise = 1.0 / math.sqrt(step.target_rps * step.duration_s)  # a Poisson count's sd
        slack = max(slack, POISSON_SDS * noise)
    if step.offered_rps >= (1.0 - slack) * step.target_rps:
        return None
    return f"{step.offered_rps:.1f} req/s offered of {step.target_rps:.1f} asked"


def holds_slo(ci: list[float | None], slo_ms: float) -> bool:
    """Does the interval contain the SLO (an open bound counts as beyond it)? The verdict's
    test for "undecided", and the step runner's for measuring a window longer."""
    low, high = ci
    return (low is None or low <= slo_ms) and (high is None or high > slo_ms)


def _ms(value: float | None) -> str:
    return "?" if value is None else f"{value:.1f}"


@dataclass(frozen=True)
class CurvePoint:
    """One step of a trial's search: what was asked, what was measured, the verdict."""

    step: int
    result: StepResult
    verdict: Verdict

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CurvePoint:
        """The point back from its `capacity_curve` entry (as_dict), rounded as stored: for
        reading a study's searches again, e.g. under another budget."""
        names = {f.name for f in fields(StepResult)}
        result = StepResult(**{k: v for k, v in data.items() if k in names})
        verdict = Verdict(
            passed=data["passed"],
            achieved=data.get("achieved", True),
            reason=data.get("reason"),
            decided=data.get("outcome") != "undecided",
            note=data.get("undecided_note"),
        )
        return cls(data["step"], result, verdict)

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
        rounded["outcome"] = self.verdict.outcome
        rounded["undecided_note"] = self.verdict.note
        return rounded

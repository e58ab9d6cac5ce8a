"""What a capacity trial records: its value, constraints and user attrs.

The figures of the capacity step also fill the attrs a closed-loop trial has (`rps`,
`p95_ms`, `error_rate`, `mean_batch_size`, ...), so `show`, the confirmation pass and the
dashboard read both modes alike; `rps` is then the capacity.
"""

from __future__ import annotations

from typing import Any

from tuner.capacity.search import SearchOutcome
from tuner.capacity.step import CurvePoint
from tuner.trial_record import NO_LATENCY_MS, constraint_values, meets

CURVE_ATTR = "capacity_curve"


def reported_point(outcome: SearchOutcome) -> CurvePoint | None:
    """The step whose figures stand for the trial: the capacity step, else the lowest rate
    tried (what the configuration does under the lightest load the search offered)."""
    if outcome.capacity is not None:
        return outcome.capacity
    if not outcome.points:
        return None
    return min(outcome.points, key=lambda p: p.result.target_rps)


def constraints(
    outcome: SearchOutcome, percentile: str, slo_ms: float, max_error_rate: float
) -> list[float]:
    """`[latency at capacity - slo_ms, error rate at capacity - max_error_rate]`, <= 0 when
    feasible. Without a passing step the lowest rate's figures are used, and when they break
    neither limit (the step failed on goodput or was not achieved) the latency counts as
    NO_LATENCY_MS, so the trial is infeasible wherever constraints are read."""
    point = reported_point(outcome)
    if point is None:
        return [NO_LATENCY_MS - slo_ms, 0.0]
    latency = point.result.latency_ms(percentile)
    values = constraint_values(latency, point.result.error_rate, slo_ms, max_error_rate)
    if outcome.capacity is None and meets(values):
        values[0] = NO_LATENCY_MS - slo_ms
    return values


def capacity_attrs(outcome: SearchOutcome, percentile: str) -> dict[str, Any]:
    point = reported_point(outcome)
    attrs: dict[str, Any] = {
        "capacity_rps": round(outcome.capacity_rps, 2),
        # the 95% interval of where the SLO is crossed ([low, None] = open above), and its
        # relative half-width; capacity_step_rps is the goodput of the highest passing step
        "capacity_ci_rps": outcome.interval.as_list() if outcome.interval else None,
        "capacity_precision": (
            round(outcome.precision_reached, 4) if outcome.precision_reached is not None else None
        ),
        "capacity_step_rps": (
            round(outcome.capacity.result.goodput_rps, 2) if outcome.capacity else None
        ),
        "undecided_steps": sum(1 for p in outcome.points if not p.verdict.decided),
        "pause_max_ms": longest_pauses(outcome),
        "capacity_target_rps": (
            round(outcome.capacity.result.target_rps, 2) if outcome.capacity else None
        ),
        "latency_at_capacity_ms": (
            _round(outcome.capacity.result.latency_ms(percentile)) if outcome.capacity else None
        ),
        CURVE_ATTR: [p.as_dict() for p in outcome.points],
        "search_steps": len(outcome.points),
        "search_s": round(outcome.elapsed_s, 1),
        "search_stop_reason": outcome.stop_reason,
        "search_stop_detail": outcome.stop_detail,
        "non_monotone": outcome.non_monotone,
        "infeasible_reason": outcome.infeasible_reason(),
    }
    if point is not None:
        r = point.result
        attrs.update(
            {
                "rps": round(outcome.capacity_rps, 2),
                "offered_rps": round(r.offered_rps, 2),
                "p50_ms": _round(r.p50_ms),
                "p95_ms": _round(r.p95_ms),
                "p99_ms": _round(r.p99_ms),
                "requests": r.requests,
                "failures": r.failures,
                "error_rate": round(r.error_rate, 5),
                "failures_by_code": dict(r.failures_by_code),
                "mean_batch_size": _round(r.mean_batch_size),
                "cpu_load_generator_percent": _round(r.cpu_load_generator_percent),
                "cpu_service_percent": _round(r.cpu_service_percent),
                "cpu_model_server_percent": _round(r.cpu_model_server_percent),
                "in_flight_limit_hit": r.in_flight_limit_hit,
                "measure_s": round(r.duration_s, 2),
            }
        )
    return attrs


def longest_pauses(outcome: SearchOutcome) -> dict[str, float]:
    """Per process, the longest pause of the bench seen in any step's window."""
    out: dict[str, float] = {}
    for p in outcome.points:
        for process, ms in p.result.pause_max_ms.items():
            out[process] = max(out.get(process, 0.0), ms)
    return out


def ci_text(attrs: dict[str, Any]) -> str:
    """ " (95% CI 780-842, +-3.9%)", or "" when the trial has no interval (older studies). An
    interval open at one end says which, rather than print a bound of 0 or none."""
    ci = attrs.get("capacity_ci_rps")
    if not ci:
        return ""
    low, high = ci
    if high is None and low <= 0:  # no decided verdict on either side of the capacity
        return " (95% CI open at both ends: no step was decided)"
    if high is None:
        return f" (95% CI >= {low:.0f}, open above)"
    if low <= 0:  # no step at or below the capacity passed with its interval under the SLO
        return f" (95% CI <= {high:.0f}, open below: no passing step was decided)"
    precision = attrs.get("capacity_precision")
    return f" (95% CI {low:.0f}-{high:.0f}" + (
        f", +-{precision:.1%})" if precision is not None else ")"
    )


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)

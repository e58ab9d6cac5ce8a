"""The trial-record vocabulary: the attr names a trial is stored under, the one rule that
says whether a measurement is feasible, and which trial won.

Trials, the confirmation pass, progress lines, `show` and the benchmarks all read what the
objective wrote, so the names and the rule live here, apart from the code that measures.
A measurement is feasible when each of its constraints, `[latency - slo_ms, error_rate -
max_error_rate]`, is <= 0: the same list Optuna's samplers and optuna-dashboard read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

import optuna

from tuner.errors import TunerError

if TYPE_CHECKING:  # only the type: `show` and `export` read records without the bench
    from tuner.measure.fixed_load import Measurement

REFERENCE_ATTR = "reference"
NO_BATCHING = "no_batching"
TF_SERVING_RECOMMENDED = "tf_serving_recommended"
SAME_PARAMS_ATTR = "same_params_as"
CONSTRAINTS_ATTR = "constraints"  # Optuna's own key for constraints_func results
CONFIRMATION_ATTR = "confirmation"  # study attr: each re-measured trial's runs and medians
WINNER_ATTR = "winner"  # study attr: the confirmation pass's choice
MODEL_PATH_ATTR = "model_base_path"  # study attr: the model measured, as an absolute path
CONFIG_FILE_ATTR = "config_file"  # study attr: the config file it was created with, absolute
HOST_LOOP_ATTR = "host_loop_ms"  # the machine's speed during a search (capacity/host_speed.py)
HOST_MEMORY_ATTR = "host_memory_ms"  # ... and its memory's (random reads past the caches)
NO_LATENCY_MS = 1e9  # no successful request, so no latency: infeasible, but JSON-safe


def params_key(params: dict) -> tuple:
    """A point's identity, hashable whatever its values are (lists, booleans, strings): for
    telling which trials measured the same parameters."""
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def trial_runs(trial: optuna.trial.FrozenTrial, confirmation: dict) -> list[dict]:
    """A trial's measurements ({"rps", "round", "ci"}): the confirmation pass's runs (from the
    study's `confirmation` attr), else its own run."""
    confirmed = confirmation.get(str(trial.number))
    if confirmed and confirmed.get("runs"):
        return confirmed["runs"]
    a = trial.user_attrs
    return [{"rps": a.get("rps"), "round": None, "ci": a.get("capacity_ci_rps")}]


def constraint_values(
    latency_ms: float | None, error_rate: float, slo_ms: float, max_error_rate: float
) -> list[float]:
    """`[latency - slo_ms, error_rate - max_error_rate]`; no latency counts as NO_LATENCY_MS."""
    return [
        (latency_ms if latency_ms is not None else NO_LATENCY_MS) - slo_ms,
        error_rate - max_error_rate,
    ]


def meets(constraints: Iterable[float]) -> bool:
    """The feasibility rule: every constraint <= 0."""
    return all(c <= 0 for c in constraints)


def is_feasible(trial: optuna.trial.FrozenTrial) -> bool:
    """Measured, and every constraint (Optuna's, as the samplers and dashboard see) <= 0."""
    return bool(trial.constraints) and meets(trial.constraints.values())


def record_constraints(trial: optuna.Trial, constraints: list[float]) -> None:
    """`[latency - slo, error_rate - max]`, feasible when all <= 0, stored where Optuna's
    `constraints_func` machinery stores them: TPE, `study.best_trial` and optuna-dashboard
    (which reads only this list form, not Optuna 5's named `set_constraint` keys) all see
    which trials are feasible. The user attr is the same list, for people and reports."""
    trial.set_user_attr(CONSTRAINTS_ATTR, constraints)
    trial.storage.set_trial_system_attr(trial._trial_id, CONSTRAINTS_ATTR, constraints)


def best_feasible_value(study: optuna.Study) -> float | None:
    """The figure later trials must beat. A trial re-measured by a confirmation pass (a
    resumed study) counts with its median, not its first run: one lucky run would otherwise
    prune every configuration that cannot beat the luck."""
    best = incumbent(study)
    return best[0] if best is not None else None


def incumbent(study: optuna.Study) -> tuple[float, float | None] | None:
    """The best feasible figure (as `best_feasible_value`) and the low end of its 95%
    interval: of its own search, or the lowest of its confirmation runs' (a median of runs is
    at least their lowest low end); None when a run has no interval (closed mode, older
    studies). What a configuration must fail below to be pruned (capacity/search.py)."""
    confirmed = study.user_attrs.get(CONFIRMATION_ATTR) or {}
    found: list[tuple[float, float | None]] = []
    for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE]):
        record = confirmed.get(str(t.number))
        if record is not None:
            if record.get("feasible") and record.get("median_rps") is not None:
                found.append((record["median_rps"], _lowest_low(trial_runs(t, confirmed))))
        elif is_feasible(t) and t.value is not None:
            found.append((t.value, _lowest_low(trial_runs(t, confirmed))))
    if not found:
        return None
    value, low = max(found, key=lambda f: f[0])
    return value, None if low is None else min(low, value)


def _lowest_low(runs: list[dict]) -> float | None:
    lows = [run["ci"][0] for run in runs if run.get("ci") and run["ci"][0] is not None]
    return min(lows) if len(lows) == len(runs) else None


def best_feasible(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The best k feasible configurations, each once: of trials with the same parameters
    (a sampler's repeat), the best one stands for them. Two finalists that are one
    configuration would only compare it with itself (a demo's confirmation called the winner
    "tied" with its own twin) and leave a real alternative out."""
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if is_feasible(t)
    ]
    best: list[optuna.trial.FrozenTrial] = []
    seen: set[tuple] = set()
    for t in sorted(done, key=lambda t: t.value, reverse=True):
        if len(best) == k:
            break
        key = params_key(t.params)
        if key not in seen:
            seen.add(key)
            best.append(t)
    return best


def winning_trial(study: optuna.Study) -> tuple[optuna.trial.FrozenTrial, bool]:
    """The confirmed winner, else the best feasible trial; refuses when there is none."""
    winner = study.user_attrs.get(WINNER_ATTR)
    if winner is not None and winner.get("trial") is not None:
        trial = study.trials[winner["trial"]]
        return trial, bool(winner.get("confirmed"))
    best = best_feasible(study, 1)
    if not best:
        measured = [t for t in study.trials if "rps" in t.user_attrs]
        if not measured:
            raise TunerError(
                f"study {study.study_name!r} has no measured trial yet, so nothing to export; "
                "run `python -m tuner optimize` first"
            )
        raise TunerError(
            f"study {study.study_name!r} has no feasible trial ({len(measured)} measured, none "
            "within the latency SLO and error-rate limit); relax objective.slo_ms or "
            "objective.max_error_rate, or run more trials"
        )
    return best[0], False


def measurement_attrs(m: Measurement) -> dict[str, object]:
    """The figures of one measurement as JSON-able user attrs (trials and confirmations)."""
    load = m.load
    queue_full = load.failures_by_code.get("model_server_overloaded", 0)
    server_down = sum(
        n
        for code, n in load.failures_by_code.items()
        if code in ("model_server_unavailable", "connection")
    )
    return {
        "rps": round(m.goodput_rps, 2),
        "offered_rps": round(load.rps, 2),
        "p50_ms": _round(load.p50_ms),
        "p95_ms": _round(load.p95_ms),
        "p99_ms": _round(load.p99_ms),
        "requests": load.requests,
        "failures": load.failures,
        "error_rate": round(load.error_rate, 5),
        "failures_by_code": dict(load.failures_by_code),
        "queue_full_errors": queue_full,
        "server_down_errors": server_down,
        "server_queue_full": m.server_queue_full,
        "mean_batch_size": _round(m.mean_batch_size),
        "cpu_load_generator_percent": _round(load.generator_cpu_percent),
        "cpu_service_percent": _round(m.cpu_service_percent),
        "cpu_model_server_percent": _round(m.cpu_model_server_percent),
        "generator_saturated": load.generator_saturated,
        "saturation_reason": load.saturation_reason,
        "settled": load.settled,
        "settle_detail": load.settle_detail,
        "measure_s": round(load.duration_s, 2),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)

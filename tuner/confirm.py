"""The confirmation pass: re-measure the best few feasible trials; choose on the medians.

One lucky run should not pick the production configuration, and one unlucky run of a
reference point should not inflate the ratios quoted against it: the two references are
re-measured too (`confirm.references`), so "2.1x no batching" compares medians with medians.
Finished trials cannot be changed in Optuna, so the repeated figures live in the study's user
attrs (`confirmation`, `winner`) and in the samples table with phase "confirm".
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from pathlib import Path

import optuna

from model_server.batching_parameters import parse_text
from storage import SampleStore
from tuner.capacity.measure import CapacityMeasurer, StepWriter
from tuner.capacity.record import capacity_attrs
from tuner.config import TunerConfig
from tuner.errors import TrialFailed
from tuner.measurement import Measurer
from tuner.trial_record import (
    CONFIRMATION_ATTR,
    REFERENCE_ATTR,
    constraint_values,
    is_feasible,
    measurement_attrs,
    meets,
)

log = logging.getLogger("tuner")
WINNER_ATTR = "winner"


def best_feasible(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    done = [
        t
        for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if is_feasible(t)
    ]
    return sorted(done, key=lambda t: t.value, reverse=True)[:k]


def reference_points(
    study: optuna.Study, candidates: list[optuna.trial.FrozenTrial]
) -> list[optuna.trial.FrozenTrial]:
    """The feasible reference trials not already among the candidates, in trial order."""
    chosen = {t.number for t in candidates}
    return [
        t
        for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
        if REFERENCE_ATTR in t.user_attrs and is_feasible(t) and t.number not in chosen
    ]


def confirm(
    study: optuna.Study,
    config: TunerConfig,
    measurer: Measurer | CapacityMeasurer,
    samples: SampleStore,
    workdir: Path,
    say: Callable[[str], None],
) -> dict | None:
    """Re-measure and store the winner; None when no trial is feasible. In capacity mode
    each run is a whole capacity search, started at the trial's own capacity, never pruned."""
    candidates = best_feasible(study, config.confirm.top_k)
    if not candidates:
        say("confirmation pass skipped: no trial is feasible")
        return None
    references = reference_points(study, candidates) if config.confirm.references else []
    what = "capacity " if isinstance(measurer, CapacityMeasurer) else ""
    say(
        f"confirming {'the capacity of ' if what else ''}the best {len(candidates)} feasible "
        "trials"
        + (f" and {len(references)} reference point(s)" if references else "")
        + f" ({config.confirm.repeats} more run(s) each; the winner is chosen on medians)"
    )
    percentile = config.objective.percentile
    results: dict[str, dict] = dict(study.user_attrs.get(CONFIRMATION_ATTR) or {})
    for trial in [*candidates, *references]:
        # The trial's own run is one of the measurements the medians are taken over, and so
        # are the runs of an earlier confirmation pass (a resumed study adds to them).
        earlier = results.get(str(trial.number), {}).get("runs")
        runs = list(earlier) if earlier else [_run(trial.user_attrs, percentile)]
        first = len(runs) - 1
        for repeat in range(first, first + config.confirm.repeats):
            target = workdir / f"confirm-trial-{trial.number:04d}-{repeat}"
            try:
                attrs = _measure(measurer, study.study_name, trial, config, samples, repeat, target)
            except TrialFailed as exc:
                say(f"  confirm #{trial.number} run {repeat + 1}: failed ({exc.reason}): {exc}")
                continue
            runs.append(_run(attrs, percentile))
            say(
                f"  confirm #{trial.number} run {repeat + 1 - first}/{config.confirm.repeats}: "
                f"{what}{runs[-1]['rps']:.1f} req/s, {percentile} "
                f"{_fmt(runs[-1]['latency_ms'])} ms"
            )
        if len(runs) > 1:
            results[str(trial.number)] = summarize(trial.number, runs, config)
    study.set_user_attr(CONFIRMATION_ATTR, results)
    candidate_numbers = {t.number for t in candidates}
    confirmed = [r for r in results.values() if r["feasible"] and r["trial"] in candidate_numbers]
    if confirmed:
        best = max(confirmed, key=lambda r: r["median_rps"])
        winner = {
            "trial": best["trial"],
            "median_rps": best["median_rps"],
            f"median_{percentile}_ms": best[f"median_{percentile}_ms"],
            "runs": len(best["rps"]),
            "confirmed": True,
        }
    else:
        # Nothing held up when re-measured: say so, and fall back to the best single run.
        say("no candidate stayed feasible when re-measured: the winner is the best single run")
        winner = {
            "trial": candidates[0].number,
            "median_rps": candidates[0].value,
            f"median_{percentile}_ms": candidates[0].user_attrs.get(f"{percentile}_ms"),
            "runs": 1,
            "confirmed": False,
        }
    study.set_user_attr(WINNER_ATTR, winner)
    return winner


def _measure(
    measurer: Measurer | CapacityMeasurer,
    study_name: str,
    trial: optuna.trial.FrozenTrial,
    config: TunerConfig,
    samples: SampleStore,
    repeat: int,
    target: Path,
) -> dict:
    """One more measurement of a trial's configuration (its samples stored with phase
    "confirm"), as the attrs a trial records."""
    batching_text = trial.user_attrs.get("batching_file")
    batching = parse_text(batching_text) if batching_text else None
    flags = dict(trial.user_attrs.get("server_flags") or {})
    if isinstance(measurer, CapacityMeasurer):
        start = trial.user_attrs.get("capacity_target_rps") or config.load.start_rps
        writer = StepWriter(samples, study_name, trial.number, phase="confirm", repeat=repeat)
        m = measurer.measure(
            batching, flags, target, start_rps=start, may_prune=False, on_step=writer
        )
        return capacity_attrs(m.outcome, config.objective.percentile)
    closed = measurer.measure(batching, flags, target)
    samples.write(study_name, trial.number, closed.load.samples, phase="confirm", repeat=repeat)
    return measurement_attrs(closed)


def _run(attrs: dict, percentile: str) -> dict:
    return {
        "rps": attrs["rps"],
        "latency_ms": attrs.get(f"{percentile}_ms"),
        "error_rate": attrs["error_rate"],
    }


def summarize(trial_number: int, runs: list[dict], config: TunerConfig) -> dict:
    """Medians over every run of one configuration, and whether they meet the objective."""
    percentile = config.objective.percentile
    rps = [r["rps"] for r in runs]
    latency = [r["latency_ms"] for r in runs if r["latency_ms"] is not None]
    errors = [r["error_rate"] for r in runs]
    median_latency = statistics.median(latency) if latency else None
    return {
        "trial": trial_number,
        "runs": runs,
        "rps": rps,
        f"{percentile}_ms": latency,
        "median_rps": statistics.median(rps),
        f"median_{percentile}_ms": median_latency,
        "median_error_rate": statistics.median(errors),
        "feasible": meets(
            constraint_values(
                median_latency,
                statistics.median(errors),
                config.objective.slo_ms,
                config.objective.max_error_rate,
            )
        ),
    }


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"

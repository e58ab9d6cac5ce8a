"""The confirmation pass: re-measure the best few feasible trials in interleaved rounds;
choose on the medians, and say when the finalists cannot be told apart.

One lucky run should not pick the production configuration, and one unlucky run of a
reference point should not inflate the ratios quoted against it: the two references are
re-measured too (`confirm.references`), so "2.1x no batching" compares medians with medians.
Finished trials cannot be changed in Optuna, so the repeated figures live in the study's user
attrs (`confirmation`, `winner`) and in the samples table with phase "confirm".

A capacity run whose 95% interval is open above (its search stopped on a budget or at
max_rps before any step crossed the SLO) is a lower bound, not a measurement: the median is
taken over the measured runs only, the bounds are kept apart (`lower_bounds_rps`), and a
configuration with nothing but bounds has `lower_bound` set and the highest bound as its
figure, so no report averages ">= 31" with "828" into "429".
"""

from __future__ import annotations

import logging
import random
import statistics
from collections.abc import Callable
from pathlib import Path

import optuna

from model_server.batching_parameters import parse_text
from tuner.capacity.record import capacity_attrs
from tuner.capacity.search_run import CapacityMeasurer, StepWriter
from tuner.config import TunerConfig
from tuner.errors import TrialFailed
from tuner.measure.fixed_load import Measurer
from tuner.storage import SampleStore
from tuner.study.bounds import is_lower_bound
from tuner.study.ratios import TIED, ratio
from tuner.study.run_spread import RUN_SPREAD_ATTR, RunSpread, study_run_spread
from tuner.trial_record import (
    CONFIRMATION_ATTR,
    REFERENCE_ATTR,
    WINNER_ATTR,
    best_feasible,
    constraint_values,
    is_feasible,
    measurement_attrs,
    meets,
)

log = logging.getLogger("tuner")
ROUNDS_ATTR = "confirmation_rounds"  # study attr: interleaved rounds run so far


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


def planned_searches(config: TunerConfig) -> int:
    """How many runs the confirmation pass will measure after the trials, at most: every
    finalist and both references, once per round (fewer when a finalist is a reference)."""
    if not config.confirm.top_k:
        return 0
    references = 2 if config.confirm.references else 0
    return (config.confirm.top_k + references) * config.confirm.repeats


def confirm(
    study: optuna.Study,
    config: TunerConfig,
    measurer: Measurer | CapacityMeasurer,
    samples: SampleStore,
    workdir: Path,
    say: Callable[[str], None],
) -> dict | None:
    """Re-measure and store the winner; None when no trial is feasible. In capacity mode
    each run is a whole capacity search, started at the trial's own capacity, never pruned.

    Randomized multiple interleaved trials (Abedi & Brecht, ICPE'17): `repeats` rounds, each
    measuring every finalist and reference once in a fresh random order, so a drift of the
    machine (a warming CPU, a neighbour's load) falls on all of them alike instead of on
    whichever was measured last, and each round pairs them (tuner/study/ratios.py)."""
    candidates = best_feasible(study, config.confirm.top_k)
    if not candidates:
        say("confirmation pass skipped: no trial is feasible")
        return None
    references = reference_points(study, candidates) if config.confirm.references else []
    configs = [*candidates, *references]
    what = "capacity " if isinstance(measurer, CapacityMeasurer) else ""
    say(
        f"confirming {'the capacity of ' if what else ''}the best {len(candidates)} feasible "
        "trials"
        + (f" and {len(references)} reference point(s)" if references else "")
        + f" in {config.confirm.repeats} interleaved round(s), each in a random order "
        "(the winner is chosen on medians)"
    )
    percentile = config.objective.percentile
    results: dict[str, dict] = dict(study.user_attrs.get(CONFIRMATION_ATTR) or {})
    # The trial's own run is one of the measurements the medians are taken over, and so
    # are the runs of an earlier confirmation pass (a resumed study adds to them).
    runs = {
        t.number: list(
            results.get(str(t.number), {}).get("runs") or [_run(t.user_attrs, percentile)]
        )
        for t in configs
    }
    first = max(study.user_attrs.get(ROUNDS_ATTR, 0), *(len(r) - 1 for r in runs.values()))
    rng = random.Random(f"{config.study.seed}/{first}")
    for number in range(first, first + config.confirm.repeats):
        order = list(configs)
        rng.shuffle(order)
        shown = number - first + 1
        say(
            f"  round {shown}/{config.confirm.repeats}: " + ", ".join(f"#{t.number}" for t in order)
        )
        for trial in order:
            target = workdir / f"confirm-trial-{trial.number:04d}-{number}"
            try:
                attrs = _measure(measurer, study.study_name, trial, config, samples, number, target)
            except TrialFailed as exc:
                say(f"  confirm #{trial.number} round {shown}: failed ({exc.reason}): {exc}")
                continue
            runs[trial.number].append(_run(attrs, percentile, number))
            run = runs[trial.number][-1]
            say(
                f"  confirm #{trial.number} round {shown}/{config.confirm.repeats}: "
                f"{what}{run['rps']:.1f} req/s, {percentile} {_fmt(run['latency_ms'])} ms"
            )
        study.set_user_attr(ROUNDS_ATTR, number + 1)
    for trial in configs:
        if len(runs[trial.number]) > 1:
            results[str(trial.number)] = summarize(trial.number, runs[trial.number], config)
    study.set_user_attr(CONFIRMATION_ATTR, results)
    spread = study_run_spread(study)
    if spread is not None:
        study.set_user_attr(RUN_SPREAD_ATTR, spread.as_dict())
        say(
            f"{spread.text()}: a figure measured once is known to about "
            f"+-{spread.half_width:.1%} beside its own interval (`show` adds it)"
        )
    candidate_numbers = {t.number for t in candidates}
    confirmed = [r for r in results.values() if r["feasible"] and r["trial"] in candidate_numbers]
    if confirmed:
        ranked = sorted(confirmed, key=lambda r: r["median_rps"], reverse=True)
        best = ranked[0]
        winner = {
            "trial": best["trial"],
            "median_rps": best["median_rps"],
            f"median_{percentile}_ms": best[f"median_{percentile}_ms"],
            "runs": len(best["rps"]),
            "confirmed": True,
            **({"lower_bound": True} if best.get("lower_bound") else {}),
            **_versus_runner_up(best, ranked[1:], spread),
        }
        if winner.get("tied_with"):
            say(
                f"trial {best['trial']} has the highest median, but it is {TIED} with trial(s) "
                + ", ".join(f"#{n}" for n in winner["tied_with"])
            )
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


def _versus_runner_up(best: dict, others: list[dict], spread: RunSpread | None) -> dict:
    """The winner against the next best (paired, tuner/study/ratios.py), and the finalists it cannot
    be told apart from."""
    if not others:
        return {}
    tied = []
    first = None
    for other in others:
        r = ratio(best["runs"], other["runs"], spread=spread)
        if r is None:
            continue
        first = first or (other["trial"], r)
        if r.tied:
            tied.append(other["trial"])
    if first is None:
        return {}
    return {"runner_up": first[0], "versus_runner_up": first[1].as_list(), "tied_with": tied}


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


def _run(attrs: dict, percentile: str, round_number: int | None = None) -> dict:
    """One measurement: the round it was part of (None: the trial's own run, unpaired) and,
    in capacity mode, its 95% interval."""
    return {
        "rps": attrs["rps"],
        "latency_ms": attrs.get(f"{percentile}_ms"),
        "error_rate": attrs["error_rate"],
        "round": round_number,
        "ci": attrs.get("capacity_ci_rps"),
    }


def summarize(trial_number: int, runs: list[dict], config: TunerConfig) -> dict:
    """Medians over every run of one configuration, and whether they meet the objective; the
    capacity's median over its measured runs only (lower bounds apart, see the module)."""
    percentile = config.objective.percentile
    rps = [r["rps"] for r in runs]
    measured = [r["rps"] for r in runs if not is_lower_bound(r)]
    bounds = [r["rps"] for r in runs if is_lower_bound(r)]
    latency = [r["latency_ms"] for r in runs if r["latency_ms"] is not None]
    errors = [r["error_rate"] for r in runs]
    median_latency = statistics.median(latency) if latency else None
    return {
        "trial": trial_number,
        "runs": runs,
        "rps": rps,
        f"{percentile}_ms": latency,
        "median_rps": statistics.median(measured) if measured else max(bounds),
        "measured_rps": measured,
        "lower_bounds_rps": bounds,
        "lower_bound": not measured,
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

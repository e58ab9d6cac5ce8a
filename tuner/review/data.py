"""What a study report shows, read once from the study and its tables: the figures and the
page are drawn from this plain data, so they can be tested without a browser."""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field

import optuna

from tuner.errors import TunerError
from tuner.review.show import (
    CAPACITY_COLUMNS,
    COLUMNS,
    interval_note,
    is_capacity_study,
    trial_rows,
    winner_summary,
)
from tuner.storage import SampleStore, StorageError
from tuner.study.progress import describe_params
from tuner.trial_record import (
    NO_BATCHING,
    NO_LATENCY_MS,
    REFERENCE_ATTR,
    TF_SERVING_RECOMMENDED,
    is_feasible,
    winning_trial,
)

log = logging.getLogger("tuner")
ROLE_NAMES = {
    "winner": "winner",
    NO_BATCHING: "no batching",
    TF_SERVING_RECOMMENDED: "TF Serving's recommended start",
}


@dataclass(frozen=True)
class LoadPoint:
    """One measured load level: a capacity step, or one closed-loop interval."""

    offered_rps: float
    goodput_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    passed: bool | None = None  # capacity steps only


@dataclass(frozen=True)
class TrialCurve:
    trial: int
    label: str  # "#7 max=8 timeout_us=5000 ..."
    role: str  # "winner", a reference kind, or ""
    points: list[LoadPoint]


@dataclass(frozen=True)
class TrialPoint:
    """A completed trial in the throughput-vs-latency scatter."""

    trial: int
    label: str
    role: str
    rps: float
    latency_ms: float | None
    feasible: bool


@dataclass(frozen=True)
class ReviewData:
    study_name: str
    objective: str  # the sentence the tuner prints at the start
    percentile: str
    slo_ms: float
    capacity: bool  # capacity mode: values are req/s within the SLO
    metric: str  # "capacity req/s" or "goodput req/s"
    headline: str  # the winner against both references, as `show` prints it
    columns: tuple[str, ...]
    rows: list[tuple[str, ...]]
    curves: list[TrialCurve]
    points: list[TrialPoint]
    importances: dict[str, float]
    importance_note: str  # how many trials they rest on, or why there are none
    winner: int | None
    batching_file: str | None  # the exported file's content
    batching_note: str  # what stands in for it when there is none
    curve_source: str = ""  # which table the curves come from
    trials: int = 0
    states: dict[str, int] = field(default_factory=dict)
    table_note: str | None = None  # what the capacity intervals include (show.interval_note)


def metric_name(capacity: bool) -> str:
    return "capacity req/s" if capacity else "goodput req/s"


def role_of(trial: optuna.trial.FrozenTrial, winner: int | None) -> str:
    if trial.number == winner:
        return "winner"
    return str(trial.user_attrs.get(REFERENCE_ATTR, ""))


def trial_label(trial: optuna.trial.FrozenTrial) -> str:
    return f"#{trial.number} {describe_params(trial)}"


def _winner(study: optuna.Study) -> tuple[int | None, str | None, str]:
    try:
        trial, _ = winning_trial(study)
    except TunerError as exc:
        return None, None, str(exc)
    text = trial.user_attrs.get("batching_file")
    if not text:
        return (
            trial.number,
            None,
            (
                f"the winner, trial {trial.number}, is the no-batching reference: serve without "
                "--enable_batching"
            ),
        )
    return trial.number, text, ""


def capacity_curves(
    study: optuna.Study, samples: SampleStore, winner: int | None
) -> list[TrialCurve]:
    """Each completed trial's steps from `tuner_capacity_steps`, ordered by offered rate."""
    complete = _complete(study)
    by_trial: dict[int, list[LoadPoint]] = {}
    for s in samples.read_steps(study.study_name, phase="trial"):
        if s.trial_number in complete:
            by_trial.setdefault(s.trial_number, []).append(
                LoadPoint(s.target_rps, s.goodput_rps, s.p50_ms, s.p95_ms, s.p99_ms, s.passed)
            )
    return [
        TrialCurve(n, trial_label(t), role_of(t, winner), sorted(by_trial[n], key=_rate))
        for n, t in complete.items()
        if n in by_trial
    ]


def interval_curves(
    study: optuna.Study, samples: SampleStore, winner: int | None
) -> list[TrialCurve]:
    """Closed-loop trials: each measured interval (warm-up left out) from
    `tuner_load_samples`, its throughput against its latency."""
    complete = _complete(study)
    by_trial: dict[int, list[LoadPoint]] = {}
    for s in samples.read(study.study_name, phase="trial"):
        if s.trial_number in complete and not s.in_warmup and s.requests:
            goodput = s.rps * (s.requests - s.failures) / s.requests
            by_trial.setdefault(s.trial_number, []).append(
                LoadPoint(s.rps, goodput, s.p50_ms, s.p95_ms, s.p99_ms)
            )
    return [
        TrialCurve(n, trial_label(t), role_of(t, winner), sorted(by_trial[n], key=_rate))
        for n, t in complete.items()
        if n in by_trial
    ]


def _rate(point: LoadPoint) -> float:
    return point.offered_rps


def _complete(study: optuna.Study) -> dict[int, optuna.trial.FrozenTrial]:
    states = [optuna.trial.TrialState.COMPLETE]
    return {t.number: t for t in study.get_trials(deepcopy=False, states=states)}


def trial_points(study: optuna.Study, percentile: str, winner: int | None) -> list[TrialPoint]:
    points = []
    for t in _complete(study).values():
        a = t.user_attrs
        if "rps" not in a:
            continue
        latency = a.get("latency_at_capacity_ms") if "capacity_rps" in a else None
        latency = latency if latency is not None else a.get(f"{percentile}_ms")
        if latency is not None and latency >= NO_LATENCY_MS:  # no request succeeded
            latency = None
        points.append(
            TrialPoint(
                t.number, trial_label(t), role_of(t, winner), a["rps"], latency, is_feasible(t)
            )
        )
    return points


def importances(study: optuna.Study) -> tuple[dict[str, float], str]:
    """Optuna's parameter importances over the trials that set every parameter (the
    no-batching reference sets none); empty with the reason when they cannot be computed."""
    tried = [t for t in study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])]
    params = sorted({p for t in tried for p in t.params})
    with_all = [t for t in tried if params and all(p in t.params for p in params)]
    if len(with_all) < 2:
        return {}, (
            f"parameter importances need at least 2 completed trials that set every "
            f"parameter; this study has {len(with_all)}"
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values = optuna.importance.get_param_importances(study, params=params)
    except (RuntimeError, ValueError) as exc:
        return {}, f"Optuna could not compute parameter importances: {exc}"
    few = any("less than 2 trials" in str(w.message) for w in caught)
    note = (
        f"from {len(with_all)} completed trials; some parameter values were tried only once, "
        "so these are indicative"
        if few
        else f"from {len(with_all)} completed trials"
    )
    return dict(values), note


def review_data(
    study: optuna.Study, samples: SampleStore, percentile: str, slo_ms: float
) -> ReviewData:
    capacity = is_capacity_study(study)
    winner, batching_file, batching_note = _winner(study)
    try:
        if capacity:
            curves, source = capacity_curves(study, samples, winner), "tuner_capacity_steps"
        else:
            curves, source = interval_curves(study, samples, winner), "tuner_load_samples"
    except StorageError as exc:
        raise TunerError(str(exc)) from None
    found, why = importances(study)
    states: dict[str, int] = {}
    for t in study.get_trials(deepcopy=False):
        states[t.state.name] = states.get(t.state.name, 0) + 1
    return ReviewData(
        study_name=study.study_name,
        objective=str(study.user_attrs.get("objective", "")),
        percentile=percentile,
        slo_ms=slo_ms,
        capacity=capacity,
        metric=metric_name(capacity),
        headline=winner_summary(study, percentile),
        columns=CAPACITY_COLUMNS if capacity else COLUMNS,
        rows=trial_rows(study),
        table_note=interval_note(study),
        curves=curves,
        points=trial_points(study, percentile, winner),
        importances=found,
        importance_note=why,
        winner=winner,
        batching_file=batching_file,
        batching_note=batching_note,
        curve_source=source,
        trials=len(study.trials),
        states=states,
    )

"""What the tuner leaves in the study for optuna-dashboard: the objective's name (not
"Objective 0"), a study note with the summary the tuner prints, the latency-vs-load curves
as a study plot, and each trial's curve as a PNG artifact the trial's page previews.

All of it is best effort: a failure is logged and never fails a trial or the study.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import optuna
from optuna_dashboard import save_note, save_plotly_graph_object

from storage import SampleStore, attach_files
from tuner.config import TunerConfig
from tuner.review.data import LoadPoint, TrialCurve, metric_name, review_data, trial_label
from tuner.review.figures import curves_figure, trial_curve_figure
from tuner.review.images import find_browser, write_pngs

log = logging.getLogger("tuner")
CURVES_GRAPH_ID = "latency-against-offered-load"
CURVE_PNG = "curve"  # the trial artifact is curve.png


def name_objective(study: optuna.Study, capacity: bool) -> None:
    """ "capacity req/s" or "goodput req/s" on the dashboard's axes and tables."""
    try:
        with warnings.catch_warnings():  # experimental since Optuna 3.2, and what we want
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([metric_name(capacity)])
    except Exception as exc:
        log.warning("event=dashboard_metric_name_failed reason=%r", str(exc))


def study_note(study: optuna.Study, percentile: str) -> str:
    """Markdown: the objective, the winner against the references, and every trial, as
    `python -m tuner show` prints them."""
    from tuner.report import show, winner_summary

    objective = study.user_attrs.get("objective", "")
    return (
        f"## Batching study `{study.study_name}`\n\n{objective}\n\n"
        f"**{winner_summary(study, percentile)}**\n\n"
        f"```\n{show(study)}\n```\n\n"
        "Write the winner with `python -m tuner export --out batching_parameters.txt`; "
        "the whole study as one page with `python -m tuner report --out report.html`.\n"
    )


def annotate_study(study: optuna.Study, config: TunerConfig, samples: SampleStore) -> None:
    """At the end of a run: the metric name, the note and the curves plot, all refreshed."""
    o = config.objective
    try:
        data = review_data(study, samples, o.percentile, o.slo_ms)
        name_objective(study, data.capacity)
        save_note(study, study_note(study, o.percentile))
        if data.curves:
            save_plotly_graph_object(study, curves_figure(data), graph_object_id=CURVES_GRAPH_ID)
    except Exception as exc:
        log.warning("event=dashboard_note_failed reason=%r", str(exc))


def trial_curve(trial: optuna.Trial, samples: SampleStore) -> TrialCurve | None:
    """The running trial's curve: its capacity steps (user attr), else its measured
    intervals (samples table)."""
    steps = trial.user_attrs.get("capacity_curve")
    if steps is not None:
        points = [
            LoadPoint(
                s["target_rps"],
                s.get("goodput_rps"),
                s.get("p50_ms"),
                s.get("p95_ms"),
                s.get("p99_ms"),
                s.get("passed"),
            )
            for s in steps
        ]
    else:
        points = [
            LoadPoint(s.rps, None, s.p50_ms, s.p95_ms, s.p99_ms)
            for s in samples.read(trial.study.study_name, trial.number, phase="trial")
            if not s.in_warmup and s.requests
        ]
    if not points:
        return None
    frozen = trial.storage.get_trial(trial._trial_id)
    points.sort(key=lambda p: p.offered_rps)
    return TrialCurve(trial.number, trial_label(frozen), "", points)


def attach_trial_curve(
    trial: optuna.Trial,
    config: TunerConfig,
    samples: SampleStore,
    artifact_store: object,
    workdir: Path,
) -> None:
    """`curve.png` (p50/p95/p99 against offered load, the SLO line) attached to the running
    trial, when a Chrome or Chromium is there to draw it."""
    if find_browser() is None:
        log.info("event=trial_curve_skipped reason=no_browser trial=%d", trial.number)
        return
    try:
        curve = trial_curve(trial, samples)
        if curve is None:
            return
        o = config.objective
        figure = trial_curve_figure(
            curve, o.percentile, o.slo_ms, "capacity_curve" in trial.user_attrs
        )
        (png,) = write_pngs({CURVE_PNG: figure}, workdir, scale=1.5)
        attach_files(trial, None, artifact_store, [png])
    except Exception as exc:
        log.warning("event=trial_curve_failed trial=%d reason=%r", trial.number, str(exc))

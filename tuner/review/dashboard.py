"""What the tuner leaves in the study for optuna-dashboard: the objective's name (not
"Objective 0"), a study note with the summary the tuner prints, the latency-vs-load curves
as a study plot, and each trial's curve as a PNG artifact the trial's page previews.

All of it is best effort: a failure is logged and never fails a trial or the study.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import optuna
from optuna_dashboard import save_note, save_plotly_graph_object

from tuner.config import TunerConfig
from tuner.review.data import (
    LoadPoint,
    ReviewData,
    TrialCurve,
    metric_name,
    review_data,
    trial_label,
)
from tuner.review.images import find_browser, plotting_installed, write_pngs
from tuner.storage import SampleStore, attach_files

if TYPE_CHECKING:
    import plotly.graph_objects as go

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
    `python -m tuner show` prints them (a table that wraps, not a wide fixed-width block)."""
    from tuner.review.show import (
        CAPACITY_COLUMNS,
        COLUMNS,
        interval_note,
        is_capacity_study,
        trial_rows,
        winner_summary,
    )

    objective = study.user_attrs.get("objective", "")
    winner, *versus = winner_summary(study, percentile).split("; ")
    columns = CAPACITY_COLUMNS if is_capacity_study(study) else COLUMNS
    rows = [columns, tuple("---" for _ in columns), *trial_rows(study)]
    table = "\n".join("| " + " | ".join(_cell(v) for v in row) + " |" for row in rows)
    note = interval_note(study)
    if note:
        table += f"\n\n{note[0].upper()}{note[1:]}."
    return (
        f"## Batching study `{study.study_name}`\n\n{objective}\n\n"
        f"**{winner}**\n\n" + "".join(f"- {line}\n" for line in versus) + f"\n{table}\n\n"
        "Write the winner with `python -m tuner export --out batching_parameters.txt`; "
        "the whole study as one page with `python -m tuner report --out report.html`.\n"
    )


def _cell(value: str) -> str:
    return value.replace("|", "\\|").replace("\n", " ") or " "


def annotate_study(study: optuna.Study, config: TunerConfig, samples: SampleStore) -> None:
    """At the end of a run: the metric name, the note and the curves plot, all refreshed."""
    o = config.objective
    try:
        data = review_data(study, samples, o.percentile, o.slo_ms)
        name_objective(study, data.capacity)
        save_note(study, study_note(study, o.percentile))
        if data.curves and plotting_installed():
            save_plotly_graph_object(study, dashboard_curves(data), graph_object_id=CURVES_GRAPH_ID)
    except Exception as exc:
        log.warning("event=dashboard_note_failed reason=%r", str(exc))


def dashboard_curves(data: ReviewData) -> go.Figure:
    """The report's curves in the dashboard's half-width card: the legend (a long parameter
    list per trial) gives way to the plot; the colours are said in the title, hover names
    each trial."""
    from tuner.review.figures import curves_figure

    figure = curves_figure(data)
    figure.update_layout(
        showlegend=False,
        height=430,  # the dashboard's card clips taller plots
        title={
            "text": f"{data.percentile} latency against offered load, every completed trial"
            "<br><sup>red: winner, black: no batching, green: TF Serving's recommended "
            "start, dashed: SLO; hover for a trial</sup>",
        },
    )
    return figure


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
    trial and shown in its note, when a Chrome or Chromium is there to draw it."""
    if not plotting_installed():
        log.info("event=trial_curve_skipped reason=no_plotting_extra trial=%d", trial.number)
        return
    if find_browser() is None:
        log.info("event=trial_curve_skipped reason=no_browser trial=%d", trial.number)
        return
    from tuner.review.figures import trial_curve_figure

    try:
        curve = trial_curve(trial, samples)
        if curve is None:
            return
        o = config.objective
        figure = trial_curve_figure(
            curve, o.percentile, o.slo_ms, "capacity_curve" in trial.user_attrs
        )
        (png,) = write_pngs({CURVE_PNG: figure}, workdir, scale=1.5)
        (artifact_id,) = attach_files(trial, None, artifact_store, [png])
        # The artifacts card shows a thumbnail; the trial's note shows it full width.
        url = f"/artifacts/{trial.study._study_id}/{trial._trial_id}/{artifact_id}"
        save_note(trial, f"![latency against offered load, trial {trial.number}]({url})\n")
    except Exception as exc:
        log.warning("event=trial_curve_failed trial=%d reason=%r", trial.number, str(exc))

"""What the tuner leaves for optuna-dashboard, read back as the dashboard reads it; and that
none of it can fail a trial."""

from __future__ import annotations

import json
import logging

import optuna
import pytest
from optuna_dashboard import get_note
from optuna_dashboard._custom_plot_data import get_plotly_graph_objects

from tests.support.studies import config_for, new_study
from tests.tuner.review.conftest import CURVES, WINNER
from tuner.review.dashboard import CURVES_GRAPH_ID, annotate_study, attach_trial_curve
from tuner.storage import SampleStore, open_artifact_store


def test_a_new_study_names_its_objective(tmp_path) -> None:
    study = new_study(config_for(tmp_path))
    assert study.metric_names == ["capacity req/s"]


def test_study_end_leaves_the_summary_note_and_the_curves_plot(
    capacity_config, capacity_study
) -> None:
    store = SampleStore(capacity_config.study.storage)
    try:
        annotate_study(capacity_study, capacity_config, store)
    finally:
        store.close()
    study = optuna.load_study(study_name="s", storage=capacity_config.study.storage)
    note = get_note(study)
    assert f"winner: trial {WINNER}" in note and "2.67x no batching" in note
    assert "pruned: cannot beat the best capacity so far" in note  # the trials table
    graphs = get_plotly_graph_objects(study._storage.get_study_system_attrs(study._study_id))
    figure = json.loads(graphs[CURVES_GRAPH_ID])
    assert len(figure["data"]) == len(CURVES) + 1  # a line per completed trial + the SLO


@pytest.mark.browser
def test_a_trial_gets_its_curve_as_a_png_artifact(capacity_config, tmp_path) -> None:
    study = new_study(capacity_config)
    store = SampleStore(capacity_config.study.storage)
    artifacts = open_artifact_store(tmp_path / "artifacts")
    trial = study.ask()
    trial.set_user_attr("capacity_curve", capacity_study_curve())
    try:
        attach_trial_curve(trial, capacity_config, store, artifacts, tmp_path / "trial")
    finally:
        store.close()
    study.tell(trial, 1.0)
    metas = [
        json.loads(v) for k, v in study.trials[0].system_attrs.items() if k.startswith("artifacts:")
    ]
    assert [(m["filename"], m["mimetype"]) for m in metas] == [("curve.png", "image/png")]
    url = f"/artifacts/{study._study_id}/{study.trials[0]._trial_id}/{metas[0]['artifact_id']}"
    assert f"]({url})" in get_note(trial)  # the dashboard's route for a trial's artifact
    assert (tmp_path / "trial" / "curve.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.browser
def test_a_failing_artifact_store_is_logged_not_raised(capacity_config, tmp_path, caplog) -> None:
    study = new_study(capacity_config)
    store = SampleStore(capacity_config.study.storage)
    trial = study.ask()
    trial.set_user_attr("capacity_curve", capacity_study_curve())
    with caplog.at_level(logging.WARNING, logger="tuner"):
        try:
            attach_trial_curve(trial, capacity_config, store, object(), tmp_path / "trial")
        finally:
            store.close()
    assert "event=trial_curve_failed" in caplog.text
    assert study.trials[0].state == optuna.trial.TrialState.RUNNING


def capacity_study_curve() -> list[dict]:
    return [
        {"step": 0, "target_rps": 400.0, "p50_ms": 5.0, "p95_ms": 10.0, "p99_ms": 12.0},
        {"step": 1, "target_rps": 800.0, "p50_ms": 20.0, "p95_ms": 60.0, "p99_ms": 90.0},
    ]

"""Tuning models other than the demo, end to end: real model server, service, Locust, SQLite.

Tiny windows: the figures mean nothing; what is checked is that the configured requests are
the ones sent (to the generic endpoint), every trial is measured, and a request the model
rejects fails the trial at warm-up with the model's own message."""

from __future__ import annotations

import csv
from pathlib import Path

import optuna
import orjson
import pytest

from tests.service.test_generic_predict import TABULAR_ROWS
from tests.tuner.capacity.test_capacity_end_to_end import CAPACITY_LOAD
from tests.tuner.test_end_to_end import make_config
from tuner.errors import ConfigError
from tuner.study import load_existing_study, optimize

pytestmark = pytest.mark.slow


def locust_names(tmp_path: Path) -> set[str]:
    """Every request name Locust reported in the study's trials: where the load went."""
    return {
        row["Name"]
        for stats in (tmp_path / "runs").rglob("locust_stats.csv")
        for row in csv.DictReader(stats.open())
        if row["Name"] != "Aggregated"
    }


def tabular_config(tmp_path: Path, example_models, **load):
    config = make_config(
        tmp_path,
        example_models["tabular"],
        study={"n_trials": 2},
        server={"model_name": "tabular"},
        load={"requests_order": "random", **load},
    )
    return config


def test_a_requests_file_is_what_the_study_sends(tmp_path, example_models):
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(
        b"\n".join(orjson.dumps({"instances": [row]}) for row in TABULAR_ROWS) + b"\n"
    )
    config = tabular_config(tmp_path, example_models, requests=str(requests))
    result = optimize(config, say=lambda line: None)
    trials = load_existing_study(config).trials
    assert result.trials_run == 2
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    for trial in trials:
        assert trial.user_attrs["rps"] > 0 and trial.user_attrs["error_rate"] == 0
    assert locust_names(tmp_path) == {"/v1/models/tabular:predict"}


def test_a_request_the_model_rejects_fails_the_trial_at_warmup(tmp_path, example_models):
    requests = tmp_path / "requests.jsonl"
    bad = {**TABULAR_ROWS[0], "clicks": "many"}
    requests.write_bytes(orjson.dumps({"instances": [bad]}) + b"\n")
    config = tabular_config(tmp_path, example_models, requests=str(requests))
    config.study.n_trials = 1
    optimize(config, say=lambda line: None)
    (trial, *_) = load_existing_study(config).trials
    assert trial.state == optuna.trial.TrialState.FAIL
    assert trial.user_attrs["fail_reason"] == "warmup_failed"
    detail = trial.user_attrs["fail_detail"]
    assert "400" in detail and "'clicks'" in detail and "DT_INT64" in detail


def straight_config(tmp_path: Path, example_models, kind: str, target: str, **load):
    return make_config(
        tmp_path,
        example_models[kind],
        study={"n_trials": 2},
        server={"model_name": kind},
        load={"target": target, "generate_rows": 2, **load},
        objective={"slo_ms": 1000.0},
    )


def test_capacity_over_grpc_straight_to_the_model_server(tmp_path, example_models):
    config = straight_config(tmp_path, example_models, "image", "grpc", **CAPACITY_LOAD)
    result = optimize(config, say=lambda line: None)
    trials = load_existing_study(config).trials
    assert result.trials_run == 2
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("fail_detail")
        assert trial.user_attrs["capacity_rps"] > 0
        assert trial.user_attrs["capacity_curve"][0]["goodput_rps"] > 0
    names = locust_names(tmp_path)
    assert names == {"/tensorflow.serving.PredictionService/Predict"}


def test_closed_loop_over_rest_straight_to_the_model_server(tmp_path, example_models):
    config = straight_config(tmp_path, example_models, "text", "rest")
    optimize(config, say=lambda line: None)
    trials = load_existing_study(config).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(t.user_attrs["error_rate"] == 0 for t in trials)
    assert locust_names(tmp_path) == {"/v1/models/text:predict"}


def test_a_straight_target_without_requests_is_one_sentence(tmp_path, example_models):
    config = straight_config(tmp_path, example_models, "image", "rest", generate_rows=0)
    with pytest.raises(ConfigError, match=r'load\.target = "rest"') as caught:
        optimize(config, say=lambda line: None)
    assert "\n" not in str(caught.value)

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
from tests.tuner.test_end_to_end import make_config
from tuner.study import load_existing_study, optimize

pytestmark = pytest.mark.slow


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
    names = {
        row["Name"]
        for stats in (tmp_path / "runs").rglob("locust_stats.csv")
        for row in csv.DictReader(stats.open())
        if row["Name"] != "Aggregated"
    }
    assert names == {"/v1/models/tabular:predict"}


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

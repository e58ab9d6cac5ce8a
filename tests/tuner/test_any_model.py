"""Tuning models other than the demo, end to end: real model server, service, Locust, SQLite.

Tiny windows: the figures mean nothing; what is checked is that the configured requests are
the ones sent (to the generic endpoint), every trial is measured, and a request the model
rejects fails the trial at warm-up with the model's own message."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import optuna
import orjson
import pytest

from tests.service.test_generic_predict import TABULAR_ROWS
from tests.tuner.capacity.test_capacity_end_to_end import CAPACITY_LOAD
from tests.tuner.test_end_to_end import make_config
from tuner.commands.cli import main
from tuner.config import load_config
from tuner.errors import ConfigError
from tuner.study.run import load_existing_study, optimize

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


CLOSED_LOAD = {"mode": "closed", "users": 8, "spawn_rate": 8.0, "warmup_s": 1.0, "measure_s": 3.0}


@pytest.mark.parametrize(
    ("kind", "target", "load", "sent_to"),
    [
        ("demo", "service", CLOSED_LOAD, "/v1/models/demo:predict"),
        (
            "image",
            "grpc",
            {**CAPACITY_LOAD, "max_steps": 2},
            "/tensorflow.serving.PredictionService/Predict",
        ),
        ("text", "service", CLOSED_LOAD, "/v1/models/text:predict"),
    ],
)
def test_init_then_a_short_optimize(
    tmp_path, example_models, demo_model_dir, capsys, kind, target, load, sent_to
):
    """init's config, shortened (2 trials, tiny windows, no confirmation), runs as it is."""
    model = demo_model_dir if kind == "demo" else example_models[kind]
    if kind == "demo":  # the model's name is its directory's: give the demo its own
        model = Path(shutil.copytree(model, tmp_path / "demo"))
    out = tmp_path / "tuner.toml"
    assert main(["init", "--model", str(model), "--out", str(out)]) == 0, capsys.readouterr()
    overrides = {
        "study": {"n_trials": 2, "storage": f"sqlite:///{tmp_path / 'tuning.db'}"},
        "server": {"backend": "embedded"},
        "load": {**load, "target": target},
        "confirm": {"top_k": 0},
        "objective": {"slo_ms": 1000.0},  # the figures are not the point on a busy machine
    }
    config = load_config(out, overrides)
    result = optimize(config, say=lambda line: None)
    trials = load_existing_study(config).trials
    assert result.trials_run == 2
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs.get("fail_detail")
        assert trial.value > 0
    assert locust_names(tmp_path) == {sent_to}


def test_init_then_a_requests_file_over_rest(tmp_path, example_models, capsys):
    """The tabular model through init, with the team's own requests file sent straight to the
    model server's REST API: the edits a user makes to init's config for that."""
    requests = tmp_path / "requests.jsonl"
    requests.write_bytes(
        b"\n".join(orjson.dumps({"instances": [row]}) for row in TABULAR_ROWS) + b"\n"
    )
    out = tmp_path / "tuner.toml"
    model = str(example_models["tabular"])
    assert main(["init", "--model", model, "--out", str(out)]) == 0, capsys.readouterr()
    overrides = {
        "study": {"n_trials": 2, "storage": f"sqlite:///{tmp_path / 'tuning.db'}"},
        "server": {"backend": "embedded"},
        "load": {
            **CLOSED_LOAD,
            "target": "rest",
            "requests": "requests.jsonl",  # relative to the config file
            "generate_rows": 0,
            "requests_order": "random",
        },
        "confirm": {"top_k": 0},
        "objective": {"slo_ms": 1000.0},
    }
    config = load_config(out, overrides)
    optimize(config, say=lambda line: None)
    trials = load_existing_study(config).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    assert all(t.user_attrs["error_rate"] == 0 for t in trials)
    assert locust_names(tmp_path) == {"/v1/models/tabular:predict"}


def test_a_straight_target_without_requests_is_one_sentence(tmp_path, example_models):
    config = straight_config(tmp_path, example_models, "image", "rest", generate_rows=0)
    with pytest.raises(ConfigError, match=r'load\.target = "rest"') as caught:
        optimize(config, say=lambda line: None)
    assert "\n" not in str(caught.value)

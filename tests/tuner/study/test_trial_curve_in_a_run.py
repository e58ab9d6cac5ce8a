"""A trial of a whole optimize() run gets its curve for optuna-dashboard: the run hands the
trial the function that draws it (a trial does not import the review package)."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import pytest

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.studies import config_for
from tuner.study.run import open_study, optimize


def knee(batching, flags, rate) -> Served:
    capacity = 40.0 if batching is None else 5.0 * batching.max_batch_size
    return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)


@pytest.mark.browser
def test_each_measured_trial_of_a_run_carries_its_curve_png(tmp_path: Path) -> None:
    config = config_for(tmp_path, n_trials=2)
    config.load.mode = "capacity"
    config.confirm.top_k, config.confirm.repeats = 1, 1
    (tmp_path / "model").mkdir()
    config.server.model_base_path = str(tmp_path / "model")
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    complete = [t for t in open_study(config).trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 2
    for trial in complete:
        files = [
            json.loads(v)["filename"]
            for k, v in trial.system_attrs.items()
            if k.startswith("artifacts:")
        ]
        assert "curve.png" in files, (trial.number, files)

"""A finished capacity study on real SQLite, recorded as the objective records one (no
servers): two references, a winner, an infeasible trial, a pruned and a failed one."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import render
from tests.support.studies import config_for, new_study
from tuner.config import TunerConfig
from tuner.storage import SampleStore
from tuner.study.run import load_search_space
from tuner.trial_record import record_constraints

SLO_MS = 40.0
WINNER = 2


def _step(step: int, rate: float, p95: float, passed: bool) -> dict:
    return {
        "step": step,
        "target_rps": rate,
        "offered_rps": rate,
        "completed_rps": rate,
        "goodput_rps": rate if passed else rate * 0.8,
        "p50_ms": p95 / 2,
        "p95_ms": p95,
        "p99_ms": p95 * 1.5,
        "error_rate": 0.0,
        "requests": int(rate * 3),
        "failures": 0,
        "passed": passed,
    }


# trial -> (steps in the order the search ran them, capacity, latency at capacity)
CURVES = {
    0: ([(400, 20, True), (800, 90, False), (600, 30, True)], 600.0, 30.0),
    1: ([(400, 25, True), (800, 120, False), (500, 35, True)], 500.0, 35.0),
    2: ([(400, 10, True), (1600, 38, True), (3200, 200, False)], 1600.0, 38.0),
    3: ([(400, 60, False), (200, 55, False)], 0.0, None),
}


def _record(study: optuna.Study, trial: optuna.Trial, number: int, store: SampleStore) -> None:
    steps, capacity, latency = CURVES[number]
    curve = [_step(i, r, p, ok) for i, (r, p, ok) in enumerate(steps)]
    lowest = min(curve, key=lambda s: s["target_rps"])
    reported = next((s for s in curve if s["target_rps"] == capacity), lowest)
    attrs = {
        "capacity_rps": capacity,
        "rps": capacity,
        "latency_at_capacity_ms": latency,
        "p50_ms": reported["p50_ms"],
        "p95_ms": reported["p95_ms"],
        "p99_ms": reported["p99_ms"],
        "error_rate": 0.0,
        "capacity_curve": curve,
        "search_steps": len(curve),
    }
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    record_constraints(trial, [(latency or reported["p95_ms"]) - SLO_MS, -0.01])
    store.write_steps(study.study_name, trial.number, curve)
    study.tell(trial, capacity)


@pytest.fixture
def capacity_config(tmp_path: Path) -> TunerConfig:
    config = config_for(tmp_path)
    config.objective.slo_ms = SLO_MS
    return config


@pytest.fixture
def capacity_study(capacity_config: TunerConfig) -> optuna.Study:
    config = capacity_config
    study = new_study(config)
    study.set_user_attr("load_mode", "capacity")
    space = load_search_space(config)
    store = SampleStore(config.study.storage)
    try:
        for number in range(6):
            trial = study.ask()
            batching = None
            if number != 0:  # the no-batching reference sets no parameter
                batching = space.suggest(trial).batching
            trial.set_user_attr("batching_file", render(batching) if batching else None)
            if number == 4:
                trial.set_user_attr("pruned_because", "cannot beat the best capacity so far")
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            elif number == 5:
                trial.set_user_attr("fail_reason", "never_ready")
                trial.set_user_attr("fail_detail", "the model server was not AVAILABLE")
                study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                _record(study, trial, number, store)
    finally:
        store.close()
    return study

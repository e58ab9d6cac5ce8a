"""One trial's scoring and recording, with a scripted measurer (no process): feasibility,
pruning reasons and fail reasons, in both load modes."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters
from tests.support.fake_measurer import Served
from tests.support.scripted import run
from tuner.errors import TrialFailed
from tuner.trial_record import CONSTRAINTS_ATTR, is_feasible

COMPLETE, PRUNED, FAIL = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.FAIL,
)


def closed_loop(batching: BatchingParameters | None, flags, rate) -> Served:
    """Without batching: 200 req/s within the SLO (100 ms); with it, more the larger the
    batch, and over the SLO (but under 3x it) when batches wait 5 ms."""
    if batching is None:
        return Served(rps=200.0, p95_ms=40.0)
    slow = batching.batch_timeout_micros >= 5000
    return Served(rps=200.0 + batching.max_batch_size, p95_ms=150.0 if slow else 30.0)


def test_closed_trials_are_feasible_exactly_when_within_the_slo(tmp_path: Path) -> None:
    study = run(tmp_path, closed_loop, "closed", n_trials=8)
    measured = [t for t in study.trials if t.state == COMPLETE]
    assert len(measured) == 8
    for t in measured:
        latency = t.user_attrs["p95_ms"]
        assert t.user_attrs["feasible"] is is_feasible(t) is (latency <= 100.0)
        assert t.system_attrs[CONSTRAINTS_ATTR] == [latency - 100.0, -0.01]
        assert t.value == t.user_attrs["rps"]
    assert {t.user_attrs["feasible"] for t in measured} == {True, False}


def test_clearly_infeasible_closed_trials_are_pruned_with_the_reason(tmp_path: Path) -> None:
    def far_over_slo(batching, flags, rate) -> Served:
        return Served(rps=100.0, p95_ms=40.0 if batching is None else 500.0)

    study = run(tmp_path, far_over_slo, "closed", n_trials=4)
    references = study.trials[:2]
    assert [t.state for t in references] == [COMPLETE, COMPLETE]  # never pruned
    for t in study.trials[2:]:
        assert t.state == PRUNED
        assert t.user_attrs["pruned_because"] == "p95 above 3x the SLO for 3 intervals"
        assert len(t.intermediate_values) == 3  # stopped after the third measured interval


def test_clearly_worse_closed_trials_are_pruned_with_the_reason(tmp_path: Path) -> None:
    def slow_unless_big_batches(batching, flags, rate) -> Served:
        big = batching is not None and batching.max_batch_size == 128
        return Served(rps=400.0 if big else 100.0, p95_ms=40.0)

    study = run(tmp_path, slow_unless_big_batches, "closed", n_trials=6)
    assert study.trials[1].value == 400.0  # the recommended reference point: 128
    for t in study.trials[2:]:
        if t.params["max_batch_size"] == 128:
            assert t.state == COMPLETE
        else:
            assert t.state == PRUNED
            assert t.user_attrs["pruned_because"] == (
                "throughput under 50% of the best feasible trial (400.0 req/s) for 3 intervals"
            )


def test_a_failed_measurement_says_why(tmp_path: Path) -> None:
    def dies_with_batching(batching, flags, rate) -> Served:
        if batching is not None:
            raise TrialFailed(
                "server_exited", "the model server exited", log_tail="oom", exit_code=9
            )
        return Served(rps=50.0, p95_ms=40.0)

    study = run(tmp_path, dies_with_batching, "closed", n_trials=3)
    assert [t.state for t in study.trials] == [COMPLETE, FAIL, FAIL]
    failed = study.trials[1]
    assert failed.user_attrs["fail_reason"] == "server_exited"
    assert failed.user_attrs["fail_detail"] == "the model server exited\n--- log tail ---\noom"
    assert failed.user_attrs["exit_code"] == 9


def knee(batching: BatchingParameters | None, flags, rate: float | None) -> Served:
    """Serves up to a capacity within the SLO, then falls over: 40 req/s without batching,
    5 req/s per unit of max_batch_size with it."""
    capacity = 40.0 if batching is None else 5.0 * batching.max_batch_size
    assert rate is not None
    if rate <= capacity:
        return Served(rps=rate, p95_ms=30.0)
    return Served(rps=capacity, p95_ms=400.0)


def test_a_capacity_trial_records_its_capacity_and_constraints(tmp_path: Path) -> None:
    study = run(tmp_path, knee, "capacity", n_trials=2)
    no_batching, recommended = study.trials
    assert no_batching.state == recommended.state == COMPLETE
    # within 5% of the cliff at 40 req/s: the crossing lies between the steps around it
    assert no_batching.value == pytest.approx(40.0, rel=0.05)
    for t, knee_rps in ((no_batching, 40.0), (recommended, 640.0)):  # max_batch_size 128
        steps = t.user_attrs["capacity_curve"]
        assert all(p["passed"] == (p["target_rps"] <= knee_rps) for p in steps)
        # where the SLO is crossed: between the highest pass and the lowest failure above it
        passed = max(p["goodput_rps"] for p in steps if p["passed"])
        failed = min(p["target_rps"] for p in steps if not p["passed"] and p["target_rps"] > passed)
        assert passed <= t.value <= failed
        assert t.user_attrs["capacity_step_rps"] == passed
        assert is_feasible(t) and t.user_attrs["feasible"]
        assert t.user_attrs["capacity_rps"] == round(t.value, 2)
        assert {p["step"]: p["goodput_rps"] for p in steps} == pytest.approx(
            {k: round(v, 2) for k, v in t.intermediate_values.items()}
        )


def best_low(trials) -> float:
    """The low end of the 95% interval of the best of `trials`."""
    best = max(trials, key=lambda t: t.value)
    return best.user_attrs["capacity_ci_rps"][0]


def test_a_capacity_trial_that_cannot_beat_the_incumbent_is_pruned(tmp_path: Path) -> None:
    study = run(tmp_path, knee, "capacity", n_trials=4)
    best = max(t.value for t in study.trials[:2])
    for t in study.trials[2:]:
        if t.params["max_batch_size"] == 128:
            continue  # as good as the recommended reference point: not prunable
        assert t.state == PRUNED
        assert t.user_attrs["pruned_because"].startswith(
            f"cannot beat the best capacity so far ({best:.1f} req/s, at least "
        )  # the low end of its interval, where the decided failure that pruned it lies
        low = best_low(study.trials[:2])
        rates = [p["target_rps"] for p in t.user_attrs["capacity_curve"]]
        # stopped at its first decided failure at or under that low end, no later
        assert rates[-1] <= low and all(r > low for r in rates[:-1])

"""A whole study in capacity mode on the demo model: real model server, service, open-loop
Locust and SQLite. Steps are short (the figures are not meaningful); what is checked is that
every trial searches, records its curve and capacity, is pruned or reported as a user needs,
and that export quotes the capacity against both reference points."""

from __future__ import annotations

import re

import optuna
import pytest

from tests.support.browser import shown_browser
from tests.tuner.test_end_to_end import make_config
from tuner.capacity.ramp import BOUND, OVER_SLO, SETTLED
from tuner.commands.export import export
from tuner.review.show import show, winner_summary
from tuner.storage import SampleStore
from tuner.study.run import load_existing_study, optimize

pytestmark = pytest.mark.slow
CURVE_KEYS = {
    "step", "target_rps", "offered_rps", "completed_rps", "goodput_rps", "p50_ms", "p95_ms",
    "p99_ms", "error_rate", "mean_batch_size", "cpu_model_server_percent", "cpu_service_percent",
    "cpu_load_generator_percent", "passed", "reason", "in_flight_limit_hit",
}  # fmt: skip
RAMP_OUTCOMES = {SETTLED, OVER_SLO, BOUND}
CAPACITY_LOAD = {
    "mode": "capacity",
    "start_rps": 40.0,
    "step_warmup_s": 1.0,
    "step_measure_s": 2.0,
    "max_steps": 4,
    "step_extra_s": 0.0,  # a step is never lengthened: its figures are not what is checked
    "resolution": 0.3,
    "max_in_flight": 128,
}


@pytest.fixture(scope="module")
def capacity_run(tmp_path_factory, demo_model_dir):
    tmp_path = tmp_path_factory.mktemp("capacity")
    config = make_config(
        tmp_path,
        demo_model_dir,
        study={"n_trials": 4},
        load=CAPACITY_LOAD,
        confirm={"references": True},  # the ratios quoted with intervals below
        objective={"slo_ms": 250.0},
    )
    lines: list[str] = []
    with shown_browser():  # the one real study of the suite that draws its trials' curves
        result = optimize(config, say=lines.append)
    return config, result, lines


def test_every_trial_searches_and_records_its_curve(capacity_run) -> None:
    config, result, lines = capacity_run
    study = load_existing_study(config)
    assert study.user_attrs["load_mode"] == "capacity"
    model = config.path(config.server.model_base_path).resolve()
    assert study.user_attrs["model_base_path"] == str(model)  # what export names
    trials = study.get_trials()
    assert len(trials) == 4 and result.trials_run == 4
    references = trials[:2]
    for trial in trials:
        a = trial.user_attrs
        assert trial.state in (
            optuna.trial.TrialState.COMPLETE,
            optuna.trial.TrialState.PRUNED,
        ), a.get("fail_detail")
        curve = a["capacity_curve"]
        assert curve and set(curve[0]) >= CURVE_KEYS
        assert len(curve) == a["search_steps"] <= 4 + 2  # the low-rate check and its retry
        assert sorted(trial.intermediate_values) == [p["step"] for p in curve]
        assert trial.intermediate_values[0] == pytest.approx(curve[0]["goodput_rps"], abs=0.01)
        assert a["search_stop_reason"]
        assert a["host_loop_ms"] > 0  # the machine's speed over its search, pruned or not
        assert a["host_memory_ms"] > 0  # and its memory's
        # only the first step after the restart had a ramp, recorded beside it
        assert curve[0]["ramp_s"] > 0 and curve[0]["ramp_outcome"] in RAMP_OUTCOMES
        assert all(p["ramp_s"] is None and p["ramp_outcome"] is None for p in curve[1:])
        artifacts = optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        assert "curve.png" in {a.filename for a in artifacts}, trial.number
    for trial in references:  # never pruned; the demo model serves 40 req/s within 250 ms
        a = trial.user_attrs
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert a["capacity_rps"] > 0 and trial.value == a["capacity_rps"]
        assert a["latency_at_capacity_ms"] <= 250.0
        assert trial.system_attrs["constraints"][0] == pytest.approx(
            a["latency_at_capacity_ms"] - 250.0, abs=0.01
        )
    # the second reference starts at the first one's capacity (less the resolution): the
    # no-batching reference brackets the first trials
    assert references[1].user_attrs["capacity_curve"][0]["target_rps"] == pytest.approx(
        references[0].user_attrs["capacity_rps"] / 1.3, rel=0.01
    )
    assert references[0].user_attrs["capacity_curve"][0]["target_rps"] == 40.0
    assert references[0].user_attrs["mean_batch_size"] is None  # no batching: no batch series
    for trial in trials[2:]:
        first = trial.user_attrs["capacity_curve"][0]["target_rps"]
        best_before = max(t.value for t in trials[: trial.number] if t.user_attrs.get("feasible"))
        # it probed the incumbent, less the resolution
        assert first == pytest.approx(best_before / 1.3, rel=0.01)
        if trial.state == optuna.trial.TrialState.PRUNED:
            # one step at the probe rate, two when the first only just missed (a second look)
            curve = trial.user_attrs["capacity_curve"]
            assert len(curve) <= 2 and {step["target_rps"] for step in curve} == {first}
            assert "cannot beat the best capacity" in trial.user_attrs["pruned_because"]
    assert sum("capacity" in line and "trial " in line for line in lines) >= 4


def test_samples_and_steps_are_stored_per_step(capacity_run) -> None:
    config, _, _ = capacity_run
    study = load_existing_study(config)
    with SampleStore(config.study.storage) as store:
        for trial in study.get_trials():
            steps = store.read_steps("e2e", trial.number, phase="trial")
            intervals = store.read("e2e", trial.number, phase="trial")
            curve = trial.user_attrs["capacity_curve"]
            assert [s.step for s in steps] == [p["step"] for p in curve]
            assert [s.passed for s in steps] == [p["passed"] for p in curve]
            assert {i.step for i in intervals} == {p["step"] for p in curve}
            assert len({i.index for i in intervals}) == len(intervals)
            for p in curve:  # a 2 s window, unless it ended early (it could not pass) or was
                # measured longer (its verdict was undecided), up to twice the window more
                measured = sum(not i.in_warmup and i.step == p["step"] for i in intervals)
                assert measured == 2 + round(p["extended_s"]) or (p["ended_early"] and measured < 2)
                assert p["extended_s"] <= 4.0


def test_confirmation_export_and_summary_quote_capacity(capacity_run) -> None:
    config, result, lines = capacity_run
    study = load_existing_study(config)
    assert result.winner is not None
    assert any(line.startswith("confirming the capacity of the best") for line in lines)
    confirmation = study.user_attrs["confirmation"][str(result.winner["trial"])]
    assert len(confirmation["rps"]) == 2  # the trial's own search and one more
    with SampleStore(config.study.storage) as store:
        assert store.read_steps("e2e", result.winner["trial"], phase="confirm")
    summary = winner_summary(study, "p95")
    assert "capacity" in summary
    if study.trials[result.winner["trial"]].user_attrs["batching_file"]:
        # every ratio with its 95% interval, e.g. "2.31x [2.12-2.47] no batching (trial 0: ",
        # unless a capacity's interval is open above (too few requests to decide a failure)
        interval = r"\d+\.\d\dx (\[\d+\.\d\d-\d+\.\d\d\] )?"
        assert re.search(interval + r"no batching \(trial 0: ", summary), summary
        if result.winner["trial"] == 1:  # TF Serving's start may itself win on this machine
            assert "the winner is TF Serving's recommended start itself" in summary, summary
        else:
            assert re.search(interval + r"TF Serving's recommended start \(trial 1: ", summary)
        exported = export(study, config.base_dir / "b.txt", model_name="sentiment")
        assert exported.capacity and re.search(interval + "no batching", exported.versus)
    assert show(study).splitlines()[0].split()[3] == "capacity"

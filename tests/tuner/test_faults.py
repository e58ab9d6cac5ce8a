"""Faults mid-study, each on the real part: a running tuner (real model server, service, Locust,
database) and one of its processes killed, stopped or cut off by the test inside a step's
window (tests/support/faults.py). After each: the expected trials finished and failed with the
right reason, none left RUNNING, the samples and steps tables consistent with the trials, and
no process of ours left. Steps are tiny (1 s warm-up, 2 s window, 3 steps) and studies short.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from optuna.trial import TrialState

from tests.support.faults import (
    Fault,
    check_records,
    finished,
    leftovers,
    signal_part,
)
from tests.support.postgres import running_postgres
from tests.support.processes import live_command_lines
from tests.tuner.test_end_to_end import make_config
from tuner.config import TunerConfig, load_config
from tuner.errors import TunerError
from tuner.resume import RETRY_ATTR, counted_trials
from tuner.study import load_existing_study, optimize

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[2]
SHORT_STEPS = {
    "mode": "capacity",
    "start_rps": 40.0,
    "step_warmup_s": 1.0,
    "step_measure_s": 2.0,
    "max_steps": 3,
    "resolution": 0.5,
    "low_check_fraction": 0.0,
    "max_in_flight": 128,
}


def fault_config(tmp_path: Path, model: Path, n_trials: int, **sections) -> TunerConfig:
    sections.setdefault("load", {}).update(SHORT_STEPS)
    sections.setdefault("confirm", {}).update(top_k=0)
    sections.setdefault("objective", {}).update(slo_ms=250.0)
    sections.setdefault("study", {}).update(n_trials=n_trials, sampler="random")
    return make_config(tmp_path, model, **sections)


def run_with(config: TunerConfig, fault: Fault) -> tuple[list[str], set[int]]:
    """optimize() with `fault` armed; returns what it said and the processes before it."""
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    said: list[str] = []
    fault.start()
    try:
        optimize(config, say=said.append)
    finally:
        fault.cancel()
        fault.join(timeout=10)
    assert fault.done.is_set() and fault.error is None, (fault.error, said)
    return said, before


def by_reason(stored, reason: str):
    return [t for t in stored if t.user_attrs.get("fail_reason") == reason]


def test_a_model_server_killed_mid_window_fails_its_trial_and_the_next_restarts_it(
    tmp_path, demo_model_dir
) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=3)
    fault = Fault(config, signal_part("model_server", signal.SIGKILL), trial=1)
    _said, before = run_with(config, fault)

    stored = check_records(config)
    (failed,) = by_reason(stored, "server_exited")
    assert failed.number == 1
    assert failed.user_attrs["exit_code"] == -signal.SIGKILL
    assert "exited with code -9 during the load test" in failed.user_attrs["fail_detail"]
    assert "--- log tail ---" in failed.user_attrs["fail_detail"]
    # A server that exits may be its configuration's doing: measured, counted, not re-run.
    assert len(stored) == 3 and len(finished(stored)) == 2
    assert counted_trials(load_existing_study(config)) == 3
    assert not leftovers(before)


def test_a_hung_model_server_fails_its_step_and_is_stopped(tmp_path, demo_model_dir) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2)
    # SIGSTOP after the window's first interval: alive, ports open, answering nothing, with
    # some of the step's requests already answered.
    fault = Fault(config, signal_part("model_server", signal.SIGSTOP), trial=0, after=2)
    try:
        _said, before = run_with(config, fault)
    finally:
        if fault.result is not None:  # should it be left, never leave a stopped process
            with contextlib.suppress(psutil.Error):
                psutil.Process(fault.result[0]).resume()

    stored = check_records(config)
    hung = stored[0]
    assert hung.state == TrialState.FAIL, hung.user_attrs
    assert hung.user_attrs["fail_reason"] == "server_unresponsive"
    assert "stopped answering" in hung.user_attrs["fail_detail"]
    assert len(finished(stored)) == 1 and len(stored) == 2
    assert not psutil.pid_exists(fault.result[0]) or (
        psutil.Process(fault.result[0]).status() == psutil.STATUS_ZOMBIE
    )
    assert not leftovers(before)


def test_a_killed_service_is_a_fault_of_the_bench_restarted_and_its_trial_rerun(
    tmp_path, demo_model_dir
) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=3)
    fault = Fault(config, signal_part("service", signal.SIGKILL), trial=1)
    said, before = run_with(config, fault)

    stored = check_records(config)
    (failed,) = by_reason(stored, "service_failed")
    assert failed.number == 1
    assert "exited with code -9" in failed.user_attrs["fail_detail"]
    # Never a capacity read from the dead service's connection errors.
    for trial in finished(stored):
        assert not trial.user_attrs.get("failures_by_code", {}).get("connection"), trial.number
    (retry,) = [t for t in stored if t.user_attrs.get(RETRY_ATTR) == failed.number]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED), retry.user_attrs
    assert retry.params == failed.params
    assert any(
        "trial 1 failed for a fault of the bench (service_failed)" in line for line in said
    ), said
    assert len(finished(stored)) == 3 and len(stored) == 4  # n_trials measured
    assert counted_trials(load_existing_study(config)) == 3
    assert not leftovers(before)


def test_a_killed_locust_fails_its_trial_and_leaves_no_worker(tmp_path, demo_model_dir) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2, load={"processes": 2})
    fault = Fault(config, signal_part("locust", signal.SIGKILL), trial=1)
    _said, before = run_with(config, fault)

    stored = check_records(config)
    (failed,) = by_reason(stored, "load_generator_failed")
    assert failed.number == 1
    assert "Locust exited with code -9" in failed.user_attrs["fail_detail"]
    (retry,) = [t for t in stored if t.user_attrs.get(RETRY_ATTR) == 1]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED)
    assert len(finished(stored)) == 2 and len(stored) == 3
    assert not leftovers(before)


def test_sigterm_marks_the_trial_interrupted_stops_everything_and_the_study_resumes(
    tmp_path, demo_model_dir, child_tmpdir
) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2)
    (tmp_path / "tuner.toml").write_text(
        f'[study]\nname = "e2e"\nn_trials = 2\nsampler = "random"\n'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{demo_model_dir}"\n'
        '[search]\nspace = "quick"\n[confirm]\ntop_k = 0\n[objective]\nslo_ms = 250.0\n'
        "[load]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in SHORT_STEPS.items())
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "optimize"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Its browser, stopped with it, leaves Chromium's temporary files behind.
        env={**os.environ, "TMPDIR": str(child_tmpdir)},
    )
    fault = Fault(config, lambda: psutil.Process(proc.pid).children(recursive=True), trial=0)
    fault.start()
    fault.join(timeout=300)
    children = fault.result or []
    proc.send_signal(signal.SIGTERM)  # what `docker stop` and Kubernetes send
    try:
        _, stderr = proc.communicate(timeout=60)  # the bound: the children stop in seconds
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the tuner did not exit within 60 s of SIGTERM")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not live_command_lines(alive)
    (interrupted, *_) = check_records(config)
    assert interrupted.user_attrs["fail_reason"] == "interrupted"

    result = optimize(load_config(tmp_path / "tuner.toml"), say=lambda line: None)
    assert result.trials_run == 2
    stored = check_records(config)
    assert len(finished(stored)) == 2
    assert [t.user_attrs.get(RETRY_ATTR) for t in stored if RETRY_ATTR in t.user_attrs] == [0]


def test_an_unwritable_artifact_directory_keeps_the_measurement_and_says_so_once(
    tmp_path, demo_model_dir, caplog
) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2)
    artifacts = config.path(config.study.artifact_dir)

    def break_it() -> None:
        # Root ignores permissions: a regular file where the directory was stops even root.
        shutil.rmtree(artifacts)
        artifacts.write_text("not a directory\n")

    caplog.set_level(logging.WARNING, logger="tuner")
    _said, before = run_with(config, Fault(config, break_it, trial=0))

    stored = check_records(config)
    assert len(finished(stored)) == 2 and len(stored) == 2
    for trial in stored:
        assert "artifact directory" in trial.user_attrs["artifacts_failed"]
        assert trial.user_attrs["capacity_curve"]  # the measurement is stored
    logged = [r for r in caplog.records if "event=artifacts_failed" in r.getMessage()]
    assert len(logged) == 1 and "Not a directory" in logged[0].getMessage()
    assert not leftovers(before)


def test_a_postgresql_restart_mid_study_is_ridden_out(tmp_path, demo_model_dir, caplog) -> None:
    """A server of its own: stopping the session's would cut off every other test."""
    with running_postgres() as server:
        url = server.new_database()
        config = fault_config(tmp_path, demo_model_dir, n_trials=2, study={"storage": url})

        def restart() -> None:
            server.stop()
            time.sleep(4)  # across the step's end, when its figures are written
            server.start()

        caplog.set_level(logging.WARNING)
        _said, before = run_with(config, Fault(config, restart, trial=0))
        stored = check_records(config)

    assert len(finished(stored)) == 2 and len(stored) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("event=storage_retry" in m for m in messages), messages
    assert any("event=storage_recovered" in m for m in messages), messages
    assert not leftovers(before)


def test_a_database_away_too_long_stops_in_one_sentence_and_the_study_resumes(
    tmp_path, demo_model_dir
) -> None:
    with running_postgres() as server:
        url = server.new_database()
        config = fault_config(
            tmp_path, demo_model_dir, n_trials=2, study={"storage": url, "storage_retry_s": 3.0}
        )
        config.study.stale_after_s = 2
        fault = Fault(config, server.stop, trial=0)
        before = {c.pid for c in psutil.Process().children(recursive=True)}
        fault.start()
        with pytest.raises(TunerError) as stopped:
            optimize(config, say=lambda line: None)
        fault.join(timeout=10)
        message = str(stopped.value)
        assert "did not answer for 3 s" in message and "run the same command" in message
        assert "\n" not in message
        assert not leftovers(before)

        server.start()
        time.sleep(3.5)  # the cut-off trial's heartbeat goes stale: it runs again
        optimize(config, say=lambda line: None)
        stored = check_records(config)
    assert len(finished(stored)) == 2
    (abandoned,) = [t for t in stored if t.state == TrialState.FAIL]
    assert [t.user_attrs.get(RETRY_ATTR) for t in finished(stored)].count(abandoned.number) == 1


def test_an_sqlite_file_locked_by_another_writer_is_waited_for(tmp_path, demo_model_dir) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2)
    db = tmp_path / "tuning.db"

    def lock_for_a_while() -> None:
        other = sqlite3.connect(db, timeout=30)
        try:
            other.execute("BEGIN EXCLUSIVE")
            time.sleep(4)  # across the step's end, when its figures are written
        finally:
            other.rollback()
            other.close()

    _said, before = run_with(config, Fault(config, lock_for_a_while, trial=0))
    stored = check_records(config)
    assert len(finished(stored)) == 2 and len(stored) == 2
    assert not leftovers(before)

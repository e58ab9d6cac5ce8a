"""Faults mid-study, each on the real part: one running study (real model server, service,
Locust, SQLite) in which the test kills, stops or cuts off a part inside the window of a chosen
trial's first measured step (tests/support/faults.py), one fault per trial, as an unattended
study meets them one after another. Each test reads what its fault left; together: the right
trials finished and failed with the right reason, none left RUNNING, the samples and steps
tables consistent with the trials, no process of ours left, and `n_trials` counted as a user
expects. Steps are tiny: the figures are not what is checked.

The schedule (trial: fault -> what must follow):

    0: the SQLite file locked by another writer for 4 s -> waited for, the trial finishes
    1: the model server SIGKILLed  -> server_exited, counted; trial 2 restarts the server
    2: the service SIGKILLed       -> service_failed, a fault of the bench: re-run as trial 3
    4: Locust SIGKILLed            -> load_generator_failed, re-run as trial 5
    5: the artifact directory replaced by a file -> trials 5-7 keep their measurements,
       the failure logged once
    6: the model server SIGSTOPped -> server_unresponsive, counted, the stopped server gone
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import signal
from functools import partial
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from tests.support.faults import (
    Fault,
    LogLines,
    by_reason,
    check_records,
    fault_config,
    finished,
    leftovers,
    lock_sqlite,
    run_with,
    signal_part,
)
from tuner.coordination.resume import RETRY_ATTR, counted_trials
from tuner.study.run import load_existing_study

pytestmark = pytest.mark.slow
N_TRIALS = 6  # trials 0, 1, 3, 5, 6, 7 count; 2 and 4 are the bench's faults, re-run


def replace_with_a_file(directory: Path):
    def act() -> None:
        # Root ignores permissions: a regular file where the directory was stops even root.
        shutil.rmtree(directory)
        directory.write_text("not a directory\n")

    return act


@pytest.fixture(scope="module")
def faulted(tmp_path_factory, demo_model_dir):
    tmp_path = tmp_path_factory.mktemp("faults")
    # Two Locust processes, so a killed one has a worker that must not be left.
    config = fault_config(tmp_path, demo_model_dir, n_trials=N_TRIALS, load={"processes": 2})
    faults = {
        "sqlite_lock": Fault(config, partial(lock_sqlite, tmp_path / "tuning.db"), trial=0),
        "server_kill": Fault(config, signal_part("model_server", signal.SIGKILL), trial=1),
        "service_kill": Fault(config, signal_part("service", signal.SIGKILL), trial=2),
        "locust_kill": Fault(config, signal_part("locust", signal.SIGKILL), trial=4),
        "artifacts": Fault(
            config, replace_with_a_file(config.path(config.study.artifact_dir)), trial=5
        ),
        # After the window's first interval: alive, ports open, answering nothing, with some
        # of the step's requests already answered.
        "server_stop": Fault(config, signal_part("model_server", signal.SIGSTOP), trial=6, after=2),
    }
    records = LogLines()
    logging.getLogger("tuner").addHandler(records)
    try:
        said, before = run_with(config, *faults.values())
    finally:
        logging.getLogger("tuner").removeHandler(records)
        stopped = faults["server_stop"].result
        if stopped is not None:  # should it be left, never leave a stopped process
            with contextlib.suppress(psutil.Error):
                psutil.Process(stopped[0]).resume()
    return config, faults, said, before, records.messages


@pytest.fixture(scope="module")
def stored(faulted) -> list[optuna.trial.FrozenTrial]:
    return check_records(faulted[0])


def test_the_study_counts_n_trials_measured_and_leaves_nothing_running(faulted, stored):
    config, _faults, _said, before, _log = faulted
    states = [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in stored]
    assert len(stored) == N_TRIALS + 2, states
    assert counted_trials(load_existing_study(config)) == N_TRIALS
    assert not leftovers(before)


def test_an_sqlite_file_locked_by_another_writer_is_waited_for(stored):
    assert stored[0].state == TrialState.COMPLETE, stored[0].user_attrs
    assert stored[0].user_attrs["capacity_curve"]


def test_a_model_server_killed_mid_window_fails_its_trial_and_the_next_restarts_it(stored):
    (failed,) = by_reason(stored, "server_exited")
    assert failed.number == 1
    assert failed.user_attrs["exit_code"] == -signal.SIGKILL
    assert "exited with code -9 during the load test" in failed.user_attrs["fail_detail"]
    assert "--- log tail ---" in failed.user_attrs["fail_detail"]
    # A server that exits may be its configuration's doing: measured, counted, not re-run.
    assert not [t for t in stored if t.user_attrs.get(RETRY_ATTR) == 1]
    # Trial 2 measured on a new server: its own fault fired inside its first measured step
    # (run_with checks that every fault ran), and it failed for that fault, not the server.
    assert stored[2].user_attrs["fail_reason"] == "service_failed"


def test_a_killed_service_is_a_fault_of_the_bench_restarted_and_its_trial_rerun(faulted, stored):
    _config, _faults, said, _before, _log = faulted
    (failed,) = by_reason(stored, "service_failed")
    assert failed.number == 2
    assert "exited with code -9" in failed.user_attrs["fail_detail"]
    # Never a capacity read from the dead service's connection errors.
    for trial in finished(stored):
        assert not trial.user_attrs.get("failures_by_code", {}).get("connection"), trial.number
    (retry,) = [t for t in stored if t.user_attrs.get(RETRY_ATTR) == 2]
    assert retry.number == 3
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED), retry.user_attrs
    assert retry.params == failed.params
    assert any(
        "trial 2 failed for a fault of the bench (service_failed)" in line for line in said
    ), said


def test_a_killed_locust_fails_its_trial_and_leaves_no_worker(stored):
    (failed,) = by_reason(stored, "load_generator_failed")
    assert failed.number == 4
    assert "Locust exited with code -9" in failed.user_attrs["fail_detail"]
    (retry,) = [t for t in stored if t.user_attrs.get(RETRY_ATTR) == 4]
    assert retry.state in (TrialState.COMPLETE, TrialState.PRUNED), retry.user_attrs


def test_a_hung_model_server_fails_its_step_and_is_stopped(faulted, stored):
    _config, faults, _said, _before, _log = faulted
    (hung,) = by_reason(stored, "server_unresponsive")
    assert hung.number == 6 and hung.state == TrialState.FAIL
    assert "stopped answering" in hung.user_attrs["fail_detail"]
    pid = faults["server_stop"].result[0]
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert stored[7].state in (TrialState.COMPLETE, TrialState.PRUNED)  # and the study went on


def test_an_unwritable_artifact_directory_keeps_the_measurement_and_says_so_once(faulted, stored):
    _config, _faults, _said, _before, messages = faulted
    for trial in stored[:5]:
        assert "artifacts_failed" not in trial.user_attrs, trial.number
    for trial in (stored[5], stored[7]):
        assert "artifact directory" in trial.user_attrs["artifacts_failed"]
        assert trial.user_attrs["capacity_curve"]  # the measurement is stored
    logged = [m for m in messages if "event=artifacts_failed" in m]
    assert len(logged) == 1 and "Not a directory" in logged[0], logged

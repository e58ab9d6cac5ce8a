"""Resuming on real SQLite: interrupted and abandoned trials run again once and do not count."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from tests.support.studies import config_for, finish, new_study
from tuner.coordination.resume import (
    ABANDONED,
    BENCH_FAULTS,
    RETRY_ATTR,
    counted_trials,
    fail_reason,
    fail_stale_trials,
    requeue_cut_short,
)
from tuner.review.show import trial_rows
from tuner.study.run import load_search_space, open_study
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, TF_SERVING_RECOMMENDED

# The heartbeat must be older than 2 s; SQLite's clock has whole seconds, so allow one more.
STALE_WAIT_S = 3.5


def start_beating(study: optuna.Study) -> optuna.Trial:
    """Ask a trial and record its heartbeat, as `study.optimize` does while it runs."""
    trial = study.ask()
    study._storage.record_heartbeat(trial._trial_id)
    return trial


def test_interrupted_trials_do_not_count_and_are_requeued_once(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    space = load_search_space(config)
    study = new_study(config)
    no_batching = study.ask()
    finish(study, no_batching, "interrupted")
    assert counted_trials(study) == 0
    assert [t.number for t in requeue_cut_short(study)] == [0]
    assert requeue_cut_short(study) == []  # a second resume does not queue it again
    waiting = study.get_trials(states=[TrialState.WAITING])
    assert [t.user_attrs.get(REFERENCE_ATTR) for t in waiting] == [
        TF_SERVING_RECOMMENDED,
        NO_BATCHING,
    ]
    recommended = study.ask()
    space.suggest(recommended)
    finish(study, recommended, "never_ready")  # a failure that is not an interruption counts
    again = study.ask()
    assert again.user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert again.user_attrs[RETRY_ATTR] == 0
    finish(study, again)
    assert counted_trials(study) == 2


def test_a_trial_whose_heartbeat_stopped_is_abandoned_and_runs_again(tmp_path: Path) -> None:
    study = new_study(config_for(tmp_path, stale_after_s=2))
    start_beating(study)  # then the tuner is SIGKILLed: nothing more is written
    time.sleep(STALE_WAIT_S)
    (abandoned,) = fail_stale_trials(study)

    assert abandoned.state == TrialState.FAIL
    assert fail_reason(abandoned) == ABANDONED
    assert counted_trials(study) == 0
    # Failing it already re-queued it (Optuna's stale-trial callback); a resume adds nothing.
    assert requeue_cut_short(study) == []
    waiting = study.get_trials(states=[TrialState.WAITING])
    assert [(t.user_attrs[REFERENCE_ATTR], t.user_attrs.get(RETRY_ATTR)) for t in waiting] == [
        (TF_SERVING_RECOMMENDED, None),
        (NO_BATCHING, 0),
    ]
    notes = {row[0]: row[-1] for row in trial_rows(study)}
    assert ABANDONED in notes["0"]


def test_a_trial_that_still_beats_is_left_alone(tmp_path: Path) -> None:
    """Another tuner host working on the same study must not lose its trial."""
    config = config_for(tmp_path, stale_after_s=30)
    study = new_study(config)
    running = start_beating(study)
    other_host = open_study(config, load_search_space(config))
    assert fail_stale_trials(other_host) == []
    assert requeue_cut_short(other_host) == []
    assert study._storage.get_trial(running._trial_id).state == TrialState.RUNNING
    assert counted_trials(other_host) == 0


def test_a_running_study_retries_a_trial_another_host_abandoned(tmp_path: Path) -> None:
    config = config_for(tmp_path, stale_after_s=2)
    start_beating(new_study(config))  # host A dies inside the no-batching reference
    time.sleep(STALE_WAIT_S)
    host_b = open_study(config, load_search_space(config))
    host_b.optimize(lambda trial: 1.0, n_trials=2)

    trials = host_b.get_trials()
    assert fail_reason(trials[0]) == ABANDONED
    # The recommended reference was queued first; the retry comes right after it.
    assert trials[1].user_attrs[REFERENCE_ATTR] == TF_SERVING_RECOMMENDED
    assert trials[2].user_attrs[RETRY_ATTR] == 0
    assert trials[2].user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert counted_trials(host_b) == 2


def test_a_trial_the_bench_failed_does_not_count_and_runs_again_once(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    study = new_study(config)
    finish(study, study.ask(), "port_conflict")  # the no-batching reference
    assert "port_conflict" in BENCH_FAULTS
    assert counted_trials(study) == 0
    assert [t.number for t in requeue_cut_short(study)] == [0]
    assert requeue_cut_short(study) == []
    recommended = study.ask()
    load_search_space(config).suggest(recommended)
    finish(study, recommended, "server_exited")  # the configuration's own failure counts
    retry = study.ask()
    assert (retry.user_attrs[RETRY_ATTR], retry.user_attrs[REFERENCE_ATTR]) == (0, NO_BATCHING)
    finish(study, retry)
    assert counted_trials(study) == 2


def test_a_dead_service_or_load_generator_is_the_bench_and_its_retry_runs_again(
    tmp_path: Path,
) -> None:
    """A retry the bench fails again is not burned either: it runs again, and a tuner that
    meets such faults in a row stops instead (tuner/coordination/shared_trials.py)."""
    config = config_for(tmp_path)
    study = new_study(config)
    finish(study, study.ask(), "service_failed")  # the service died under the reference
    assert [t.number for t in requeue_cut_short(study)] == [0]
    recommended = study.ask()  # the other reference, queued before the retry
    load_search_space(config).suggest(recommended)
    finish(study, recommended)
    retry = study.ask()
    assert retry.user_attrs[RETRY_ATTR] == 0
    finish(study, retry, "load_generator_failed")  # the bench broke again
    assert [t.number for t in requeue_cut_short(study)] == [2]
    assert counted_trials(study) == 1
    assert {"service_failed", "load_generator_failed"} <= BENCH_FAULTS
    assert "server_exited" not in BENCH_FAULTS

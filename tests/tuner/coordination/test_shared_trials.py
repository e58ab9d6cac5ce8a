"""Claiming a shared study's trials, on SQLite and a real PostgreSQL: several tuners (threads
here, each with its own storage connection and lock, as separate processes have) and an
objective that measures nothing, so the claim logic is all that runs."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from tests.support.studies import config_for
from tuner.config import TunerConfig
from tuner.coordination.resume import ABANDONED, RETRY_ATTR, counted_trials, fail_reason
from tuner.coordination.shared_trials import SharedTrials, confirmation_claim
from tuner.coordination.study_lock import StudyLock
from tuner.errors import TrialFailed, TunerError
from tuner.study.run import join_study, load_search_space, make_sampler, open_study
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, TF_SERVING_RECOMMENDED

optuna.logging.set_verbosity(optuna.logging.WARNING)


def tuner(config: TunerConfig, n_trials: int, ran: dict[str, int], name: str) -> None:
    """What `optimize` does around the measurements: join the study, then claim trials."""
    space = load_search_space(config)
    lock = StudyLock(config.study.storage, config.study.name)
    try:
        with lock:
            study = open_study(config, space)
            join_study(study, space, config, say=lambda line: None)

        def objective(trial: optuna.Trial) -> float:
            if REFERENCE_ATTR not in trial.user_attrs:
                space.suggest(trial)
            trial.set_user_attr("worker", name)
            time.sleep(0.02)  # long enough for the others to try to claim meanwhile
            return 1.0

        ran[name] = SharedTrials(
            study, lock, n_trials, poll_s=0.1, sampler_for=lambda n: make_sampler(config, space, n)
        ).run(objective)
    finally:
        lock.close()


def run_tuners(config: TunerConfig, n_trials: int, names: list[str]) -> dict[str, int]:
    ran: dict[str, int] = {}
    threads = [threading.Thread(target=tuner, args=(config, n_trials, ran, name)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return ran


def test_three_tuners_run_n_trials_in_total_and_each_reference_once(
    database_url: str, tmp_path: Path
) -> None:
    config = config_for(tmp_path, storage=database_url, sampler="random")
    ran = run_tuners(config, 7, ["a", "b", "c"])

    study = optuna.load_study(study_name="s", storage=database_url)
    trials = study.get_trials()
    assert sorted(ran) == ["a", "b", "c"] and sum(ran.values()) == 7
    assert [t.state for t in trials] == [TrialState.COMPLETE] * 7  # nothing queued is left
    assert len({t.number for t in trials}) == 7
    references = Counter(t.user_attrs.get(REFERENCE_ATTR) for t in trials)
    assert references[NO_BATCHING] == 1 and references[TF_SERVING_RECOMMENDED] == 1
    assert Counter(t.user_attrs["worker"] for t in trials) == Counter(ran)


def test_seeded_tuners_do_not_replay_each_others_parameters(tmp_path: Path) -> None:
    """Every tuner seeds its sampler from the study's seed: without a per-trial seed, three
    of them would propose the same sequence and measure each configuration three times."""
    config = config_for(tmp_path, storage=f"sqlite:///{tmp_path / 'db.sqlite'}", sampler="random")
    run_tuners(config, 8, ["a", "b", "c"])

    trials = optuna.load_study(study_name="s", storage=config.study.storage).get_trials()
    searched = [
        tuple(sorted(t.params.items())) for t in trials if REFERENCE_ATTR not in t.user_attrs
    ]
    assert len(searched) == 6 and len(set(searched)) == 6, searched


def test_a_tuner_that_dies_in_a_trial_leaves_it_to_a_survivor(
    database_url: str, tmp_path: Path
) -> None:
    config = config_for(tmp_path, storage=database_url, sampler="random", stale_after_s=2)
    space = load_search_space(config)
    dead = open_study(config, space)
    lock = StudyLock(database_url, "s")
    with lock:
        join_study(dead, space, config, say=lambda line: None)
    lock.close()
    lost = dead.ask()  # the no-batching reference, then the tuner is SIGKILLed
    dead._storage.record_heartbeat(lost._trial_id)

    ran = run_tuners(config, 3, ["survivor"])

    trials = optuna.load_study(study_name="s", storage=database_url).get_trials()
    assert ran == {"survivor": 3}
    assert fail_reason(trials[0]) == ABANDONED
    retries = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == 0]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert counted_trials(optuna.load_study(study_name="s", storage=database_url)) == 3


def test_the_confirmation_pass_is_claimed_once_per_set_of_trials(
    database_url: str, tmp_path: Path
) -> None:
    config = config_for(tmp_path, storage=database_url)
    study = open_study(config, load_search_space(config))
    study.optimize(lambda trial: 1.0, n_trials=2)

    with confirmation_claim(database_url, study, "a") as first:
        assert first is None
        with confirmation_claim(database_url, study, "b") as second:
            assert second == "the confirmation pass is run by a"
    with confirmation_claim(database_url, study, "b") as again:
        assert again == "the confirmation pass of these 2 trials was run by a"
    study.optimize(lambda trial: 1.0, n_trials=1)  # more trials: confirm them again
    with confirmation_claim(database_url, study, "b") as after_more:
        assert after_more is None


def test_a_confirming_tuner_that_fails_leaves_the_pass_to_the_next(tmp_path: Path) -> None:
    config = config_for(tmp_path)
    study = open_study(config, load_search_space(config))
    study.optimize(lambda trial: 1.0, n_trials=1)
    with pytest.raises(RuntimeError), confirmation_claim(config.study.storage, study, "a"):
        raise RuntimeError("the model server broke")
    with confirmation_claim(config.study.storage, study, "b") as claim:
        assert claim is None


def joined(config: TunerConfig) -> tuple[optuna.Study, StudyLock]:
    space = load_search_space(config)
    lock = StudyLock(config.study.storage, config.study.name)
    with lock:
        study = open_study(config, space)
        join_study(study, space, config, say=lambda line: None)
    return study, lock


def measuring(config: TunerConfig, fails: Callable[[int], bool]) -> Callable[[optuna.Trial], float]:
    """An objective that measures nothing, and fails `port_conflict` (as the objective records
    a failure) on the calls `fails` picks, counted from 0."""
    space = load_search_space(config)
    calls = itertools.count()

    def objective(trial: optuna.Trial) -> float:
        if REFERENCE_ATTR not in trial.user_attrs:
            space.suggest(trial)
        if fails(next(calls)):
            detail = "port 8500 (server.grpc_port) is already in use on 127.0.0.1"
            trial.set_user_attr("fail_reason", "port_conflict")
            trial.set_user_attr("fail_detail", detail)
            raise TrialFailed("port_conflict", detail)
        return 1.0

    return objective


def check_every_failure_ran_again(study: optuna.Study, n_trials: int) -> None:
    trials = study.get_trials()
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    assert len(complete) == n_trials and counted_trials(study) == n_trials
    references = Counter(t.user_attrs.get(REFERENCE_ATTR) for t in complete)
    assert references[NO_BATCHING] == 1 and references[TF_SERVING_RECOMMENDED] == 1
    retried = Counter(t.user_attrs.get(RETRY_ATTR) for t in trials if RETRY_ATTR in t.user_attrs)
    failed = [t.number for t in trials if t.state == TrialState.FAIL]
    assert sorted(retried) == failed and set(retried.values()) == {1}


def test_a_tuner_whose_bench_fails_trials_in_a_row_stops_and_burns_none(tmp_path: Path) -> None:
    config = config_for(tmp_path, sampler="random")
    study, lock = joined(config)
    try:
        with pytest.raises(TunerError) as stopped:
            SharedTrials(study, lock, 4, max_bench_faults_in_a_row=3).run(
                measuring(config, fails=lambda call: True), catch=(TrialFailed,)
            )
        assert str(stopped.value).startswith(
            "3 trials in a row (0, 1, 2) failed for a reason that is the bench's, not their "
            "configuration's (port_conflict: port 8500 (server.grpc_port) is already in use"
        )
        assert counted_trials(study) == 0
        # The bench is fixed: the next run measures those trials, and the study its 4 trials.
        SharedTrials(study, lock, 4, max_bench_faults_in_a_row=3).run(
            measuring(config, fails=lambda call: False), catch=(TrialFailed,)
        )
    finally:
        lock.close()
    check_every_failure_ran_again(study, 4)


def test_bench_faults_between_measured_trials_do_not_stop_the_tuner(tmp_path: Path) -> None:
    config = config_for(tmp_path, sampler="random")
    study, lock = joined(config)
    try:
        ran = SharedTrials(study, lock, 3, max_bench_faults_in_a_row=2).run(
            measuring(config, fails=lambda call: call % 2 == 0), catch=(TrialFailed,)
        )
    finally:
        lock.close()
    assert ran == 6
    check_every_failure_ran_again(study, 3)

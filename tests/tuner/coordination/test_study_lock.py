"""The study lock keeps tuners in separate processes apart, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import optuna
import pytest

from tuner.coordination.study_lock import StudyLock, lock_key
from tuner.storage import StorageError, open_storage

REPO_ROOT = Path(__file__).resolve().parents[3]

# Each process adds one to a counter kept in the study, read and written in two steps: without
# the lock, two processes read the same value and an increment is lost.
INCREMENTER = textwrap.dedent(
    """
    import sys, time
    import optuna
    from tuner.storage import open_storage
    from tuner.coordination.study_lock import StudyLock

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    url, rounds = sys.argv[1], int(sys.argv[2])
    study = optuna.load_study(study_name="s", storage=open_storage(url))
    lock = StudyLock(url, "s", timeout_s=60)
    for _ in range(rounds):
        with lock:
            value = study.user_attrs["counter"]
            time.sleep(0.005)
            study.set_user_attr("counter", value + 1)
    lock.close()
    """
)


def test_increments_from_three_processes_are_never_lost(database_url: str) -> None:
    study = optuna.create_study(storage=open_storage(database_url), study_name="s")
    study.set_user_attr("counter", 0)
    rounds = 15
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", INCREMENTER, database_url, str(rounds)], cwd=REPO_ROOT
        )
        for _ in range(3)
    ]
    try:
        codes = [p.wait(timeout=120) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert codes == [0, 0, 0]
    reloaded = optuna.load_study(study_name="s", storage=open_storage(database_url))
    assert reloaded.user_attrs["counter"] == 3 * rounds


HOLDER = textwrap.dedent(
    """
    import sys, time
    from tuner.coordination.study_lock import StudyLock

    lock = StudyLock(sys.argv[1], "s")
    lock.acquire()
    print("held", flush=True)
    time.sleep(120)
    """
)


def test_a_killed_holder_lets_go_and_a_waiter_times_out_with_one_sentence(
    database_url: str,
) -> None:
    optuna.create_study(storage=open_storage(database_url), study_name="s")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, database_url],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        waiter = StudyLock(database_url, "s", timeout_s=0.3)
        with pytest.raises(StorageError) as info:
            waiter.acquire()
        assert "another tuner of study 's' held its lock" in str(info.value)
        assert "\n" not in str(info.value)

        os.kill(holder.pid, signal.SIGKILL)  # no release: the server or kernel must let go
        holder.wait(timeout=10)
        waiter.timeout_s = 30
        with waiter:
            assert waiter.held
        assert not waiter.held
        waiter.close()
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_release_is_idempotent_and_locks_of_two_studies_are_independent(
    database_url: str,
) -> None:
    first, second = StudyLock(database_url, "a"), StudyLock(database_url, "b")
    try:
        with first:
            second.acquire()  # another study: never blocked
            second.release()
            first.release()
        first.release()
        assert lock_key("a") != lock_key("b") and lock_key("a") == lock_key("a")
    finally:
        first.close()
        second.close()

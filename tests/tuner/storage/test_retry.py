"""Riding out a database that stops answering, on a real SQLite file locked by another writer."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import optuna
import pytest
from sqlalchemy import exc as sa_exc

from tuner.storage import SampleStore, StorageError, open_storage
from tuner.storage.retry import Retrier, unreachable


def hold_exclusive_lock(db: Path, seconds: float) -> threading.Thread:
    """Another writer holding the SQLite file for `seconds` (started before this returns)."""
    locked = threading.Event()

    def hold() -> None:
        other = sqlite3.connect(db, timeout=10)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        other.rollback()
        other.close()

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    locked.wait(5)
    return thread


def test_a_call_is_retried_until_the_other_writer_lets_go(tmp_path: Path, caplog) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    # A busy timeout shorter than the lock: each attempt fails "database is locked".
    storage = open_storage(url, retry_s=20.0, busy_timeout_s=0.2)
    study = optuna.create_study(storage=storage, study_name="s")
    holder = hold_exclusive_lock(tmp_path / "t.db", 1.5)
    study.set_user_attr("written", True)
    holder.join()
    assert optuna.load_study(study_name="s", storage=url).user_attrs == {"written": True}
    messages = [r.getMessage() for r in caplog.records]
    assert any("event=storage_retry" in m for m in messages)
    assert any("event=storage_recovered" in m for m in messages)


def test_a_database_away_too_long_fails_in_one_sentence_then_at_once(
    tmp_path: Path, caplog
) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = SampleStore(url, busy_timeout_s=0.1, retry_s=0.5)
    point = {"step": 0, "target_rps": 10.0, "passed": True}
    holder = hold_exclusive_lock(tmp_path / "t.db", 3.0)
    with pytest.raises(StorageError) as first:
        store.write_steps("s", 0, [point])
    assert "did not answer for 0.5 s" in str(first.value) and "\n" not in str(first.value)
    retries = sum("event=storage_retry" in r.getMessage() for r in caplog.records)
    assert retries >= 1
    with pytest.raises(StorageError):  # a tuner giving up does not wait again on every call
        store.write_steps("s", 0, [point])
    assert sum("event=storage_retry" in r.getMessage() for r in caplog.records) == retries
    holder.join()
    store.close()


def test_only_errors_of_reaching_the_database_are_retried() -> None:
    calls = []

    def broken_statement() -> None:
        calls.append(1)
        raise sa_exc.ProgrammingError("SELECT nonsense", {}, Exception("syntax error"))

    with pytest.raises(sa_exc.ProgrammingError):
        Retrier("sqlite://", 10.0, sleep=lambda s: None)(broken_statement)
    assert calls == [1]
    gone = sa_exc.OperationalError("SELECT 1", {}, Exception("server closed the connection"))
    assert unreachable(gone)
    wrapped = optuna.exceptions.StorageInternalError("commit failed")
    wrapped.__cause__ = gone
    assert unreachable(wrapped)


def test_a_database_never_reached_or_wrongly_named_is_not_waited_for() -> None:
    """A wrong address or a missing database is said at once (tuner/storage/errors.py words it);
    only a database that answered before and went away is ridden out."""
    refused = sa_exc.OperationalError("SELECT 1", {}, Exception("connection refused"))
    missing = sa_exc.OperationalError(
        "SELECT 1", {}, Exception('FATAL:  database "nope" does not exist')
    )
    assert unreachable(refused) and not unreachable(missing)
    calls = []

    def failing(error: Exception):
        def call() -> None:
            calls.append(1)
            raise error

        return call

    retrier = Retrier("sqlite://", 10.0, sleep=lambda s: None)
    with pytest.raises(sa_exc.OperationalError):
        retrier(failing(refused))  # never answered: a wrong address
    assert calls == [1]
    retrier(lambda: None)
    with pytest.raises(sa_exc.OperationalError):
        retrier(failing(missing))  # answered once, but waiting does not create a database
    assert calls == [1, 1]
    answers = iter([refused, refused, None])

    def flaky() -> str:
        error = next(answers)
        if error is not None:
            raise error
        return "answered"

    assert retrier(flaky) == "answered"  # answered before, went away, came back

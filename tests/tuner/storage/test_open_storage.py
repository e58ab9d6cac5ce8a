"""open_storage: SQLite tuned for a dashboard reading during a study, any URL, clear errors."""

from __future__ import annotations

import importlib.util
import pickle
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from tests.support.postgres import PostgresServer
from tuner.storage import StorageError, open_storage

REPO_ROOT = Path(__file__).resolve().parents[3]

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _pragma(storage: optuna.storages.RDBStorage, name: str) -> object:
    with storage.engine.connect() as connection:
        return connection.execute(text(f"PRAGMA {name}")).scalar()


def test_sqlite_file_is_created_in_wal_mode_with_its_directory(tmp_path: Path) -> None:
    db = tmp_path / "nested" / "dir" / "tuning.db"
    storage = open_storage(f"sqlite:///{db}")
    optuna.create_study(storage=storage, study_name="s")

    assert db.is_file()
    with sqlite3.connect(db) as other:  # a separate connection sees the persistent mode
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_connection_gets_busy_timeout_and_synchronous_normal(tmp_path: Path) -> None:
    storage = open_storage(f"sqlite:///{tmp_path / 't.db'}", busy_timeout_s=12.5)
    assert _pragma(storage, "busy_timeout") == 12500
    assert _pragma(storage, "synchronous") == 1  # NORMAL

    # RDBStorage re-creates its engine when pickled to another process: settings survive.
    clone = pickle.loads(pickle.dumps(storage))
    assert _pragma(clone, "busy_timeout") == 12500
    assert _pragma(clone, "synchronous") == 1


def test_writer_is_not_blocked_by_an_open_read_transaction(tmp_path: Path) -> None:
    """What a dashboard does: hold a read transaction while the study writes a trial.

    With SQLite's default rollback journal the commit would wait for the reader and fail.
    """
    db = tmp_path / "t.db"
    storage = open_storage(f"sqlite:///{db}", busy_timeout_s=2)
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(lambda t: t.suggest_int("x", 0, 9), n_trials=1)

    reader = sqlite3.connect(db, isolation_level=None)
    try:
        reader.execute("BEGIN")
        before = reader.execute("SELECT count(*) FROM trials").fetchone()[0]
        started = time.monotonic()
        study.optimize(lambda t: t.suggest_int("x", 0, 9), n_trials=3)
        assert time.monotonic() - started < 2
        # The reader keeps its snapshot until its transaction ends, then sees the new trials.
        assert reader.execute("SELECT count(*) FROM trials").fetchone()[0] == before == 1
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM trials").fetchone()[0] == 4
    finally:
        reader.close()


WRITER = textwrap.dedent(
    """
    import sys, time
    import optuna
    from tuner.storage import open_storage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=open_storage(sys.argv[1]), study_name="shared",
                                load_if_exists=True)
    print("ready", flush=True)
    for _ in range(int(sys.argv[2])):
        trial = study.ask()
        trial.suggest_int("max_batch_size", 1, 128)
        time.sleep(0.03)
        study.tell(trial, 1.0)
    """
)


def test_second_process_writes_while_this_one_reads(database_url: str) -> None:
    url = database_url
    n_trials = 40
    reader_storage = open_storage(url)
    optuna.create_study(storage=reader_storage, study_name="shared")
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url, str(n_trials)],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    counts: list[int] = []
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 60
        while writer.poll() is None and time.monotonic() < deadline:
            study = optuna.load_study(study_name="shared", storage=reader_storage)
            done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
            counts.append(len(done))
            time.sleep(0.01)
        _, stderr = writer.communicate(timeout=30)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0, stderr
    final = optuna.load_study(study_name="shared", storage=reader_storage)
    assert len(final.trials) == n_trials
    assert counts == sorted(counts)
    assert any(0 < c < n_trials for c in counts), counts  # read while the writer was mid-way


def test_any_sqlalchemy_url_in_memory_and_relative(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = open_storage("sqlite://")
    study = optuna.create_study(storage=memory, study_name="m")
    study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)
    assert len(study.trials) == 2

    monkeypatch.chdir(tmp_path)
    relative = open_storage("sqlite+pysqlite:///out/relative.db")
    optuna.create_study(storage=relative, study_name="r")
    assert (tmp_path / "out" / "relative.db").is_file()
    assert _pragma(relative, "journal_mode") == "wal"


def _error(url: str, **kwargs: float) -> str:
    with pytest.raises(StorageError) as info:
        open_storage(url, **kwargs)
    message = str(info.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_unparseable_url() -> None:
    message = _error("tuning.db")
    assert "tuning.db" in message and "sqlite:///tuning.db" in message


def test_empty_url() -> None:
    assert "empty" in _error("  ")


def test_unknown_driver() -> None:
    message = _error("sqlite+nosuchdriver:///x.db")
    assert "driver" in message and "sqlite+nosuchdriver" in message


def test_driver_not_installed_hides_the_password() -> None:
    assert importlib.util.find_spec("pymssql") is None
    message = _error("mssql+pymssql://tuner:s3cret@db.invalid/tuning")
    assert "not installed" in message and "pymssql" in message
    assert "s3cret" not in message and "***" in message


def test_unwritable_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    message = _error(f"sqlite:///{blocker / 'tuning.db'}")
    assert str(blocker) in message and "writable path" in message


def test_file_that_is_not_a_database(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is certainly not an SQLite file" * 100)
    message = _error(f"sqlite:///{junk}")
    assert "not an SQLite database" in message and str(junk) in message


def test_database_locked_by_another_process(tmp_path: Path) -> None:
    db = tmp_path / "locked.db"
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
        started = time.monotonic()
        message = _error(f"sqlite:///{db}", busy_timeout_s=0.3)
        assert time.monotonic() - started < 5
    finally:
        holder.close()
    assert "locked" in message and "0.3 s" in message and str(db) in message


def test_postgresql_server_that_refuses_connections() -> None:
    # Port 1 on loopback: nothing listens there, the kernel refuses at once.
    message = _error("postgresql+psycopg://tuner:s3cret@127.0.0.1:1/tuning")
    assert "no database server answers at 127.0.0.1:1" in message and "start it" in message
    assert "s3cret" not in message


def test_postgresql_database_that_does_not_exist(postgres_server: PostgresServer) -> None:
    missing = make_url(postgres_server.admin_url).set(database="no_such_study_db")
    url = missing.render_as_string(hide_password=False)
    message = _error(url)
    assert "has no database 'no_such_study_db'" in message
    assert "createdb no_such_study_db" in message


def test_postgresql_driver_not_installed_names_the_extra() -> None:
    assert importlib.util.find_spec("psycopg2") is None
    message = _error("postgresql+psycopg2://tuner@127.0.0.1:1/tuning")
    assert "not installed" in message and "tfserving-batching-tuner[postgres]" in message


def test_study_on_postgresql_survives_reopening(database_url: str) -> None:
    """What a second tuner host does: open the same URL and find the same study and trials."""
    study = optuna.create_study(storage=open_storage(database_url), study_name="shared")
    study.optimize(lambda t: t.suggest_int("max_batch_size", 1, 64), n_trials=3)
    other = optuna.load_study(study_name="shared", storage=open_storage(database_url))
    assert [t.params for t in other.trials] == [t.params for t in study.trials]
    assert [t.number for t in other.trials] == [0, 1, 2]

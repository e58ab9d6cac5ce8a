"""SQLite set up for a study that optuna-dashboard reads while the tuner writes.

SQLite's default rollback journal makes a reader's open transaction block every writer and
vice versa, so a dashboard refreshing during a trial could fail the study with "database is
locked". Write-ahead logging (WAL) lets readers and one writer work at the same time; WAL is a
property of the database file, set once here, so every later reader (the dashboard, `tuner
show`) gets it too. Per connection we set a busy timeout (wait for the writer instead of failing)
and synchronous=NORMAL (safe with WAL, fewer fsyncs per trial).

The per-connection settings go through `creator` in the engine kwargs rather than an event
listener added after the fact: Optuna's RDBStorage re-creates its engine from `engine_kwargs`
when it is pickled to another process, and a `functools.partial` of a module function survives
that.
"""

from __future__ import annotations

import functools
import sqlite3
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

DEFAULT_BUSY_TIMEOUT_S = 30.0


def is_sqlite(url: str | URL) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def sqlite_file(url: str | URL) -> Path | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    parsed = make_url(url)
    database = parsed.database
    if not database or database == ":memory:" or parsed.query.get("mode") == "memory":
        return None
    if database.startswith("file:"):  # uri=true form: sqlite:///file:path?mode=rwc&uri=true
        database = database[len("file:") :]
    return Path(database).expanduser().absolute()


def _connect(args: tuple[Any, ...], kwargs: dict[str, Any]) -> sqlite3.Connection:
    connection = sqlite3.connect(*args, **kwargs)
    connection.execute("PRAGMA synchronous=NORMAL")
    return connection


def engine_kwargs(url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> dict[str, Any]:
    """create_engine() keyword arguments that apply our per-connection pragmas (SQLite only)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return {}
    dialect = parsed.get_dialect()()
    args, kwargs = dialect.create_connect_args(parsed)
    kwargs = dict(kwargs)
    kwargs.setdefault("timeout", busy_timeout_s)  # sqlite3's timeout is SQLite's busy timeout
    return {"creator": functools.partial(_connect, tuple(args), kwargs)}


def prepare_file(url: str, busy_timeout_s: float = DEFAULT_BUSY_TIMEOUT_S) -> None:
    """Create the parent directory and switch the database file to WAL (persistent)."""
    path = sqlite_file(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    creator = engine_kwargs(url, busy_timeout_s)["creator"]
    connection = creator()
    try:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    finally:
        connection.close()
    if str(mode).lower() != "wal":
        raise sqlite3.OperationalError(f"cannot switch {path} to WAL journal mode (got {mode})")

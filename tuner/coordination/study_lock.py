"""One lock per study, shared by every tuner that works on it, held by the study's database.

Optuna's RDB storage gives trials unique numbers, but a few decisions of ours are "look, then
act" and would race between tuners on one study: enqueueing a new study's reference points,
starting a trial only while fewer than `n_trials` are taken, re-queueing an abandoned trial,
claiming the confirmation pass. Each is taken with this lock held. It lives where the study
lives, so there is no coordinator to run, and it dies with its holder:

- PostgreSQL: a session-level advisory lock (`pg_try_advisory_lock`) on a connection of its
  own; the server releases it when that connection ends, a SIGKILLed tuner's included.
- SQLite: `flock` on a file beside the database, `tuning.db.lock-<study key>` (SQLite files
  are shared by tuners on one host only); the kernel releases it when its holder ends.
- Anything else (or an in-memory SQLite): a lock within this process, with a warning that
  tuners in other processes are not kept apart.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import threading
import time
from pathlib import Path
from typing import ClassVar, Protocol

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from tuner.storage import sqlite
from tuner.storage.errors import StorageError, as_storage_error, safe_url
from tuner.storage.retry import Retrier, unreachable

log = logging.getLogger(__name__)
POLL_S = 0.05


class _Lock(Protocol):
    def try_acquire(self) -> bool: ...

    def release(self) -> None: ...

    def close(self) -> None: ...


class StudyLock:
    """`with lock:` waits up to `timeout_s` for every other tuner of the study to let go."""

    def __init__(
        self, url: str, study_name: str, *, timeout_s: float = 120.0, retry_s: float = 0.0
    ) -> None:
        self.url = url
        self.study_name = study_name
        self.timeout_s = timeout_s
        self._lock = _lock_for(url, study_name, retry_s)
        self._held = False

    def acquire(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while not self._lock.try_acquire():
            if time.monotonic() > deadline:
                raise StorageError(
                    f"another tuner of study {self.study_name!r} held its lock in "
                    f"{safe_url(self.url)} for more than {self.timeout_s:g} s; "
                    "check that tuner, then retry"
                )
            time.sleep(POLL_S)
        self._held = True

    def try_acquire(self) -> bool:
        """Take the lock only if nobody holds it now: for work one tuner claims and the
        others skip (the confirmation pass), rather than wait for."""
        if not self._held:
            self._held = self._lock.try_acquire()
        return self._held

    def release(self) -> None:
        """Idempotent, so a caller may release early and again in a `finally`."""
        if self._held:
            self._held = False
            self._lock.release()

    @property
    def held(self) -> bool:
        return self._held

    def close(self) -> None:
        self.release()
        self._lock.close()

    def __enter__(self) -> StudyLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def lock_key(study_name: str) -> int:
    """A signed 64-bit key for PostgreSQL's advisory locks, the same in every tuner."""
    digest = hashlib.blake2b(f"tfserving-tuner:{study_name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _lock_for(url: str, study_name: str, retry_s: float = 0.0) -> _Lock:
    if sqlite.is_sqlite(url):
        path = sqlite.sqlite_file(url)
        if path is None:
            return _LocalLock(url)
        return _FileLock(
            path.with_name(f"{path.name}.lock-{lock_key(study_name) & 0xFFFFFFFF:08x}")
        )
    try:
        backend = create_engine(url, poolclass=NullPool).dialect.name
    except Exception as exc:
        raise as_storage_error(exc, url) from None
    if backend == "postgresql":
        return _AdvisoryLock(url, lock_key(study_name), retry_s)
    return _LocalLock(url)


class _FileLock:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a+")

    def try_acquire(self) -> bool:
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def release(self) -> None:
        fcntl.flock(self._file, fcntl.LOCK_UN)

    def close(self) -> None:
        self._file.close()


class _AdvisoryLock:
    """The lock lives as long as its connection: when the server restarts, the connection is
    gone and the lock with it, so a call that finds it dead opens a new one (retried while
    the server is away, tuner/storage/retry.py)."""

    def __init__(self, url: str, key: int, retry_s: float = 0.0) -> None:
        self._url = url
        self._key = key
        self._engine = create_engine(url, poolclass=NullPool)
        self._connection: Connection | None = None
        self._retry = Retrier(url, retry_s)

    def _conn(self) -> Connection:
        if self._connection is None:
            try:
                self._connection = self._engine.connect()
            except Exception as exc:
                if unreachable(exc):
                    raise
                raise as_storage_error(exc, self._url) from None
        return self._connection

    def _drop(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.close()
            self._connection = None

    def try_acquire(self) -> bool:
        def attempt() -> bool:
            conn = self._conn()
            try:
                got = conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key})
                value = got.scalar()
                conn.commit()
            except Exception:
                self._drop()
                raise
            return bool(value)

        return self._retry(attempt, "study_lock")

    def release(self) -> None:
        conn = self._connection
        if conn is None:  # dropped: the lock went with the connection
            return
        try:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
            conn.commit()
        except Exception as exc:
            if not unreachable(exc):
                raise
            self._drop()  # the connection died, and the server released its lock with it

    def close(self) -> None:
        self._drop()
        self._engine.dispose()


class _LocalLock:
    _locks: ClassVar[dict[str, threading.Lock]] = {}

    def __init__(self, url: str) -> None:
        log.warning(
            "event=study_lock_local storage=%s reason=%r",
            safe_url(url),
            "tuners in other processes are not kept apart; share a study through "
            "PostgreSQL or an SQLite file",
        )
        self._lock = self._locks.setdefault(url, threading.Lock())

    def try_acquire(self) -> bool:
        return self._lock.acquire(blocking=False)

    def release(self) -> None:
        self._lock.release()

    def close(self) -> None:
        pass

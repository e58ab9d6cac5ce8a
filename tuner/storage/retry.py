"""Riding out a database that stops answering for a while: a restart, a failover, a lock.

A study runs for hours; its database (PostgreSQL shared by several hosts, or an SQLite file
another program writes) may be unreachable for a few seconds in between. Every call the
tuner makes to it is retried with a bounded, growing backoff while the error is one of
reaching the database (connection refused or lost, server shutting down, file locked), for
at most `retry_s` seconds. After that the call fails with one sentence; from then on the
same storage fails at once, so a tuner that is giving up does not wait again on every write
on its way out, and the trial it was measuring is left RUNNING for the next run to resume.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import optuna
from sqlalchemy import exc as sa_exc

from tuner.storage.errors import StorageError, safe_url

log = logging.getLogger(__name__)
T = TypeVar("T")
FIRST_DELAY_S = 0.25
MAX_DELAY_S = 4.0


# Errors of reaching a database that waiting does not mend: the URL or the account is wrong.
_PERMANENT = (
    "does not exist",
    "password authentication failed",
    "access denied",
    "no pg_hba.conf entry",
    "unable to open database file",
    "could not translate host name",
    "name or service not known",
)


def _cause(exc: BaseException) -> BaseException:
    """Optuna wraps the driver's error in StorageInternalError: its cause decides."""
    if isinstance(exc, optuna.exceptions.StorageInternalError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def unreachable(exc: BaseException) -> bool:
    """An error of reaching the database rather than of the statement, and one that waiting
    may mend (a server restarting, a file another writer holds; not a wrong URL or password)."""
    exc = _cause(exc)
    if any(word in str(exc).lower() for word in _PERMANENT):
        return False
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, sa_exc.OperationalError | sa_exc.InterfaceError)


def _locked(exc: BaseException) -> bool:
    return "database is locked" in str(_cause(exc)).lower()


class Retrier:
    """Calls `fn()` until it succeeds, a non-connection error, or `retry_s` have passed."""

    def __init__(self, url: str, retry_s: float, sleep: Callable[[float], None] = time.sleep):
        self.url = url
        self.retry_s = retry_s
        self.sleep = sleep
        self.gave_up = False
        # A database that never answered is a wrong address, said at once; one that answered
        # and went away is ridden out. A file another writer holds is waited for either way.
        self.reached = False

    def __call__(self, fn: Callable[[], T], what: str = "database call") -> T:
        deadline = time.monotonic() + (0.0 if self.gave_up else self.retry_s)
        delay = FIRST_DELAY_S
        failures = 0
        while True:
            try:
                result = fn()
            except Exception as exc:
                if not unreachable(exc) or not (self.reached or _locked(exc)):
                    raise
                failures += 1
                if time.monotonic() + delay > deadline:
                    raise self._give_up(exc) from None
                log.warning(
                    "event=storage_retry what=%s attempt=%d delay_s=%g reason=%r",
                    what,
                    failures,
                    delay,
                    str(getattr(exc, "__cause__", None) or exc).splitlines()[0][:200],
                )
                self.sleep(delay)
                delay = min(2 * delay, MAX_DELAY_S)
                continue
            self.reached = True
            if failures:
                log.warning("event=storage_recovered what=%s attempts=%d", what, failures + 1)
            return result

    def _give_up(self, exc: BaseException) -> StorageError:
        self.gave_up = True
        cause = _cause(exc)
        lines = str(cause or exc).strip().splitlines()
        reason = lines[0].rstrip(".") if lines else type(cause or exc).__name__
        return StorageError(
            f"the database {safe_url(self.url)} did not answer for {self.retry_s:g} s (the "
            f"last error: {reason}); the finished trials are stored and the one being "
            "measured runs again: run the same command once the database is back"
        )

"""Opening the Optuna storage of a study from any SQLAlchemy URL.

SQLite (the default, `sqlite:///tuning.db`) gets its directory created, WAL journaling, a busy
timeout and synchronous=NORMAL (see tuner/storage/sqlite.py), so optuna-dashboard can read the study
while a trial is being written. Any other SQLAlchemy URL (PostgreSQL, MySQL, ...) is passed to
Optuna as is, which lets several tuner hosts share one study.
"""

from __future__ import annotations

import functools
import logging
import sqlite3
import warnings
from collections.abc import Callable

import optuna
from sqlalchemy import exc as sa_exc

from tuner.storage import sqlite
from tuner.storage.errors import StorageError, as_storage_error, safe_url
from tuner.storage.retry import Retrier

__all__ = ["StorageError", "open_storage"]

log = logging.getLogger(__name__)


StaleTrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


# Not wrapped: version checks and upgrades happen once, at opening, where failing fast is
# right; record_heartbeat wraps itself, since it must never raise in its thread.
_NOT_RETRIED = {"remove_session", "upgrade", "get_current_version", "get_head_version"}
_NOT_RETRIED |= {"get_all_versions", "check_trial_is_updatable", "record_heartbeat"}


class RetryingRDBStorage(optuna.storages.RDBStorage):
    """Optuna's RDB storage whose every call rides out a database that stops answering for
    up to `retry_s` seconds (tuner/storage/retry.py). The heartbeat, beating in a thread of its
    own, logs a failure instead of raising it: the trial's own writes say it."""

    def __init__(self, url: str, *, retry_s: float, **kwargs) -> None:
        self._retry = Retrier(url, retry_s)
        super().__init__(url, **kwargs)

    def record_heartbeat(self, trial_id: int) -> None:
        beat = optuna.storages.RDBStorage.record_heartbeat
        try:
            self._retry(lambda: beat(self, trial_id), "record_heartbeat")
        except StorageError as exc:
            log.warning("event=heartbeat_failed trial_id=%d reason=%r", trial_id, str(exc))


def _retried(name: str) -> Callable:
    method = getattr(optuna.storages.RDBStorage, name)

    @functools.wraps(method)
    def call(self: RetryingRDBStorage, *args: object, **kwargs: object) -> object:
        return self._retry(lambda: method(self, *args, **kwargs), name)

    return call


for _name, _member in vars(optuna.storages.RDBStorage).items():
    if not _name.startswith("_") and callable(_member) and _name not in _NOT_RETRIED:
        setattr(RetryingRDBStorage, _name, _retried(_name))


def open_storage(
    url: str,
    *,
    retry_s: float = 0.0,
    busy_timeout_s: float = sqlite.DEFAULT_BUSY_TIMEOUT_S,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    heartbeat_stale_trial_callback: StaleTrialCallback | None = None,
) -> optuna.storages.RDBStorage:
    """An RDBStorage for `url`; every failure is a StorageError with one sentence.

    With `retry_s` > 0 every call rides out a database that stops answering for that long
    (tuner/storage/retry.py). The heartbeat arguments are Optuna's: with them, a trial whose
    process stopped beating for `grace_period` seconds is failed and handed to the callback.
    """
    if not isinstance(url, str) or not url.strip():
        raise StorageError(
            "the storage URL is empty; give an SQLAlchemy URL such as sqlite:///tuning.db"
        )
    try:
        kwargs: dict = {}
        if sqlite.is_sqlite(url):
            sqlite.prepare_file(url, busy_timeout_s)
            kwargs = sqlite.engine_kwargs(url, busy_timeout_s)
        with warnings.catch_warnings():
            # The heartbeat is "experimental" since Optuna 2.9; the warning is noise to users.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if not sqlite.is_sqlite(url):
                kwargs["pool_pre_ping"] = True  # a restarted server's dead connections are dropped
            retrying = {"retry_s": retry_s} if retry_s > 0 else {}
            storage = (RetryingRDBStorage if retry_s > 0 else optuna.storages.RDBStorage)(
                url,
                **retrying,
                engine_kwargs=kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=heartbeat_stale_trial_callback,
            )
    except (sa_exc.SQLAlchemyError, sqlite3.Error, ImportError, OSError, RuntimeError) as exc:
        raise as_storage_error(exc, url, busy_timeout_s=busy_timeout_s) from None
    log.debug("event=storage_opened url=%s", safe_url(url))
    return storage

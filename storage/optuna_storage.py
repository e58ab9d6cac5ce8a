"""Opening the Optuna storage of a study from any SQLAlchemy URL.

SQLite (the default, `sqlite:///tuning.db`) gets its directory created, WAL journaling, a busy
timeout and synchronous=NORMAL (see storage/sqlite.py), so optuna-dashboard can read the study
while a trial is being written. Any other SQLAlchemy URL (PostgreSQL, MySQL, ...) is passed to
Optuna as is, which lets several tuner hosts share one study.
"""

from __future__ import annotations

import logging
import sqlite3
import warnings
from collections.abc import Callable

import optuna
from sqlalchemy import exc as sa_exc

from storage import sqlite
from storage.errors import StorageError, as_storage_error, safe_url

__all__ = ["StorageError", "open_storage"]

log = logging.getLogger(__name__)


StaleTrialCallback = Callable[[optuna.Study, optuna.trial.FrozenTrial], None]


def open_storage(
    url: str,
    *,
    busy_timeout_s: float = sqlite.DEFAULT_BUSY_TIMEOUT_S,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
    heartbeat_stale_trial_callback: StaleTrialCallback | None = None,
) -> optuna.storages.RDBStorage:
    """An RDBStorage for `url`; every failure is a StorageError with one sentence.

    The heartbeat arguments are Optuna's: with them, a trial whose process stopped beating
    for `grace_period` seconds is failed and handed to the callback.
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
            storage = optuna.storages.RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=heartbeat_interval,
                grace_period=grace_period,
                heartbeat_stale_trial_callback=heartbeat_stale_trial_callback,
            )
    except (sa_exc.SQLAlchemyError, sqlite3.Error, ImportError, OSError, RuntimeError) as exc:
        raise as_storage_error(exc, url, busy_timeout_s=busy_timeout_s) from None
    log.debug("event=storage_opened url=%s", safe_url(url))
    return storage

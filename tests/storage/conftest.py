"""The storage contract runs on every database the tuner supports: SQLite and PostgreSQL.

A test that takes `database_url` runs once on a fresh SQLite file and once on a fresh database
of a real PostgreSQL server (tests/support/postgres.py), as Optuna's own storage tests run one
suite over every storage.
"""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tuning.db'}"
    return request.getfixturevalue("postgres_url")

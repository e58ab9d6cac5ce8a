"""A real PostgreSQL server for the tests: `pgserver` ships PostgreSQL's binaries as a wheel.

One server per test session on a unix socket in a temporary directory (nothing listens on a
network address); every test gets a database of its own, so tests never see each other's
studies. The server is stopped, and its directory removed, when the session ends.
"""

from __future__ import annotations

import contextlib
import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text

_database_numbers = itertools.count()


class PostgresServer:
    """A running server; `new_database()` gives the SQLAlchemy URL of an empty database."""

    def __init__(self, server: object) -> None:
        self._server = server
        self.admin_url = _psycopg(server.get_uri())  # type: ignore[attr-defined]

    def stop(self) -> None:
        """Stop the server (fast: open connections are cut), as a restart or failover does."""
        from pgserver._commands import pg_ctl

        server = self._server
        pg_ctl(["-w", "stop", "-m", "fast"], pgdata=server.pgdata, user=server.system_user)  # type: ignore[attr-defined]

    def start(self) -> None:
        """Start it again on the same data directory and socket."""
        self._server.ensure_postgres_running()  # type: ignore[attr-defined]

    def new_database(self, prefix: str = "tuner_test") -> str:
        name = f"{prefix}_{next(_database_numbers)}"
        engine = create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return _psycopg(self._server.get_uri(name))  # type: ignore[attr-defined]


def _psycopg(uri: str) -> str:
    """pgserver's libpq URI as an SQLAlchemy URL on psycopg 3 (the `postgres` extra)."""
    return uri.replace("postgresql://", "postgresql+psycopg://", 1)


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    import pgserver  # imported here: only the tests that use PostgreSQL pay for it

    with tempfile.TemporaryDirectory(prefix="tuner-pg-") as parent:
        server = pgserver.get_server(Path(parent) / "pgdata", cleanup_mode="stop")
        try:
            yield PostgresServer(server)
        finally:
            server.cleanup()

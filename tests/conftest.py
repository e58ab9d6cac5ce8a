"""Fixtures shared by the whole suite: the demo model, real model servers on loopback and a
real PostgreSQL server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support.model_server import ModelServerProcess, running_model_server
from tests.support.postgres import PostgresServer, running_postgres
from tuner.runtime_dir import RUNTIME_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session", autouse=True)
def _session_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (nor a module-scoped fixture) writes to the real runtime directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_ENV, str(tmp_path_factory.mktemp("runtime")))
        yield


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own host-wide slot and port locks (tuner/runtime_dir.py), inherited by the
    tuners it starts: tests running side by side never see each other's."""
    path = tmp_path_factory.mktemp("runtime")
    monkeypatch.setenv(RUNTIME_ENV, str(path))
    return path


@pytest.fixture(scope="session")
def demo_model_dir() -> Path:
    """`models/sentiment` of the checkout, built once if missing (seconds)."""
    from scripts.build_demo_model import ensure_demo_model

    base = REPO_ROOT / "models" / "sentiment"
    ensure_demo_model(base)
    return base


@pytest.fixture(scope="session")
def example_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The example SavedModels (image, tabular, text, unbatched), built once per session;
    tests that change one copy it first."""
    from scripts.example_models import BUILDERS

    root = tmp_path_factory.mktemp("example-models")
    return {kind: build(root / kind) for kind, build in BUILDERS.items()}


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A real PostgreSQL server for the session, on a unix socket; stopped at the end."""
    with running_postgres() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """The SQLAlchemy URL of an empty PostgreSQL database of this test's own."""
    return postgres_server.new_database()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The storage contract runs on every database the tuner supports, as Optuna's own storage
    tests run one suite over every storage: a fresh SQLite file, then a fresh database of a real
    PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'tuning.db'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def model_server(demo_model_dir: Path) -> Iterator[ModelServerProcess]:
    """An embedded model server on the demo model, without batching."""
    with running_model_server(demo_model_dir) as server:
        yield server


@pytest.fixture
def batching_model_server(demo_model_dir: Path) -> Iterator[Callable[..., ModelServerProcess]]:
    """Factory: `batching_model_server(BatchingParameters(...), extra_args=[...])`."""
    import contextlib

    with contextlib.ExitStack() as stack:

        def start(batching=None, **kwargs) -> ModelServerProcess:
            return stack.enter_context(
                running_model_server(demo_model_dir, batching=batching, **kwargs)
            )

        yield start

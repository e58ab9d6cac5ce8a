"""Fixtures shared by the whole suite: the demo model, real model servers on loopback and a
real PostgreSQL server; and the session-end check that nothing a test started is left behind
(tests/support/hygiene.py)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.support import alone, hygiene, timeline
from tests.support.browser import hide_browser, shown_browser
from tests.support.model_server import ModelServerProcess, running_model_server
from tests.support.postgres import PostgresServer, running_postgres
from tuner.coordination.runtime_dir import RUNTIME_ENV

REPO_ROOT = Path(__file__).resolve().parent.parent
_SESSION_ROOT = pytest.StashKey[Path]()


def pytest_configure(config: pytest.Config) -> None:
    """The controller (or the only process) marks the session before any worker starts;
    xdist workers inherit the mark and the TMPDIR with the rest of its environment."""
    if not hasattr(config, "workerinput"):
        config.stash[_SESSION_ROOT] = hygiene.begin()
    hide_browser()  # only tests marked `browser` see one (tests/support/browser.py)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `alone` tests first, longest first, then the longest modules (tests/support/alone.py).
    Under xdist an `alone` test waits for every test of the rest to end: at the start that is
    nothing, later it can be a whole study in a module's fixture with every other worker held
    idle behind it."""
    alone.session_order(items)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[object]:
    """Under xdist, a test marked `alone` runs beside other `alone` tests only. What a test
    leaves in the session's TMPDIR is noted with its name, for the session-end report."""
    root = hygiene.session_root()
    if root is None:
        return (yield)
    worker = getattr(item.config, "workerinput", {}).get("workerid", "main")
    before = hygiene.tmp_entries(root)
    try:
        if worker == "main":
            with timeline.recorded(item.nodeid, worker):
                return (yield)
        lone = item.get_closest_marker(alone.MARK) is not None
        with alone.turn(root, lone), timeline.recorded(item.nodeid, worker):
            return (yield)
    finally:
        hygiene.note_new_entries(root, before, item.nodeid, worker)


def pytest_unconfigure(config: pytest.Config) -> None:
    """A run with no session (`--help`, a usage error) still removes the session's directory."""
    root = config.stash.get(_SESSION_ROOT, None)
    if root is not None and root.exists():
        hygiene.clean_up(root)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when a process this session started still runs, a socket still listens
    or a temporary file remains. Last: after xdist has stopped its workers."""
    config = session.config
    if hasattr(config, "workerinput"):
        root = hygiene.session_root()
        if root is not None:
            hygiene.note_worker_findings(root, config.workerinput["workerid"])
        return
    root = config.stash.get(_SESSION_ROOT, None)
    if root is None:
        return
    left = hygiene.collect(root)
    hygiene.clean_up(root)
    if not left:
        return
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "left behind by the tests (now removed)", red=True)
        for line in left.lines():
            reporter.write_line(line)
        reporter.write_line("The run fails: every test must release what it opened.", red=True)
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session", autouse=True)
def _session_runtime_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No test (nor a module-scoped fixture) writes to the real runtime directory."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNTIME_ENV, str(tmp_path_factory.mktemp("runtime")))
        yield


@pytest.fixture(autouse=True)
def runtime_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test's own host-wide slot and port locks (tuner/coordination/runtime_dir.py), inherited
    by the tuners it starts: tests running side by side never see each other's."""
    path = tmp_path_factory.mktemp("runtime")
    monkeypatch.setenv(RUNTIME_ENV, str(path))
    return path


@pytest.fixture(autouse=True)
def _browser_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `browser` finds the real Chromium; the rest find none."""
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    with shown_browser():
        yield


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


@pytest.fixture(scope="session")
def shared_model_server(demo_model_dir: Path) -> Iterator[ModelServerProcess]:
    """The demo model without batching, started once per session (per xdist worker) for every
    test that only sends it requests: start-up costs seconds of TensorFlow import and load.
    Never stop, restart or kill it (take `model_server`); a test reading its metrics compares
    scrapes before and after its own traffic."""
    with running_model_server(demo_model_dir) as server:
        yield server


@pytest.fixture
def child_tmpdir() -> Iterator[Path]:
    """A TMPDIR for a process the test SIGKILLs, which cannot remove its own temporary files
    (the tuner's browser profile); removed at the test's end. Short, unlike tmp_path: Chromium
    puts a unix socket under TMPDIR, and a socket's path must stay under 108 bytes."""
    import shutil
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="child-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def model_server(demo_model_dir: Path) -> Iterator[ModelServerProcess]:
    """An embedded model server on the demo model, without batching, of this test's own."""
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

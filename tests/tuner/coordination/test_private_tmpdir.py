"""The tuner's own temporary directory: its children's files go there, and a killed tuner's is
removed by the next tuner, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tuner.coordination.private_tmpdir import (
    MAX_PATH,
    OWNER_FILE,
    PREFIX,
    private_tmpdir,
    remove_orphans,
)
from tuner.coordination.runtime_dir import RUNTIME_ENV

# A process that holds a private directory, writes a file in it as a child would, says where,
# and waits to be killed.
HOLDER = """
import sys, time
from tuner.coordination.private_tmpdir import private_tmpdir
with private_tmpdir() as path:
    (path / "org.chromium.Chromium.x").write_text("left")
    print(path, flush=True)
    time.sleep(120)
"""


@pytest.fixture
def tmpdir_env(child_tmpdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """TMPDIR for this process and its children, as a user's shell would set it."""
    monkeypatch.setenv("TMPDIR", str(child_tmpdir))
    monkeypatch.setattr(tempfile, "tempdir", None)
    return child_tmpdir


def start_holder() -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdout=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    return proc, Path(proc.stdout.readline().strip())


def test_children_write_inside_it_and_it_is_removed_after(tmpdir_env: Path):
    with private_tmpdir() as path:
        assert path.parent == tmpdir_env and path.name.startswith(PREFIX)
        assert tempfile.gettempdir() == str(path)
        child_sees = subprocess.run(
            [sys.executable, "-c", "import tempfile; print(tempfile.mkdtemp())"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert Path(child_sees).parent == path
    assert not path.exists()
    assert os.environ["TMPDIR"] == str(tmpdir_env)
    assert tempfile.gettempdir() == str(tmpdir_env)


def test_the_runtime_directory_stays_the_hosts(tmpdir_env: Path, monkeypatch):
    """Slot and port locks live in the temporary directory too: moving TMPDIR must not move
    them, or tuners of one study would stop seeing each other's locks."""
    monkeypatch.delenv(RUNTIME_ENV)
    with private_tmpdir():
        assert Path(os.environ[RUNTIME_ENV]) == tmpdir_env / f"tuner-{os.getuid()}"
    assert RUNTIME_ENV not in os.environ


def test_a_killed_tuners_directory_is_removed_by_the_next_and_a_live_ones_kept(tmpdir_env):
    killed, killed_dir = start_holder()
    alive, alive_dir = start_holder()
    try:
        killed.kill()
        killed.wait()
        assert (killed_dir / "org.chromium.Chromium.x").exists()  # SIGKILL cleans nothing

        with private_tmpdir():
            assert not killed_dir.exists()
            assert (alive_dir / "org.chromium.Chromium.x").exists()
    finally:
        for proc in (killed, alive):
            proc.kill()
            proc.wait()
            proc.stdout.close()
    assert remove_orphans(tmpdir_env) == [alive_dir]


def test_only_directories_of_ours_are_removed(tmpdir_env):
    """Ours: `tuner.<pid>` holding an owner file. A user's `tuner.backup`, or a `tuner.<n>`
    without one, is never touched."""
    orphan, users, bare = (tmpdir_env / n for n in ("tuner.4194305", "tuner.backup", "tuner.7"))
    for path in (orphan, users, bare):
        path.mkdir()
    (orphan / OWNER_FILE).write_text("1.000")
    (users / OWNER_FILE).write_text("1.000")
    assert remove_orphans(tmpdir_env) == [orphan]
    assert users.exists() and bare.exists()


def test_a_temporary_directory_too_long_for_chromium_is_left_as_it_is(tmp_path, monkeypatch):
    """Chromium cannot start under a TMPDIR whose socket path passes 108 bytes (and kaleido
    then waits for it for good): such a TMPDIR is kept, not made longer."""
    deep = tmp_path / ("d" * MAX_PATH)
    deep.mkdir()
    monkeypatch.setenv("TMPDIR", str(deep))
    monkeypatch.setattr(tempfile, "tempdir", None)
    with private_tmpdir() as path:
        assert path == deep and tempfile.gettempdir() == str(deep)
    assert deep.exists()

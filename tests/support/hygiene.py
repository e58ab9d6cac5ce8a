"""What a test session leaves behind: processes, listening sockets and temporary files.

A session marks itself before any test (or xdist worker) starts: `SESSION_VAR` in the
environment, inherited by every process the suite starts and by theirs, whatever became of
their parent (a process in a new session, an orphan of a SIGKILLed tuner). So the processes of
this session are found by reading their environment, and another session's (another
developer's, on a shared machine) are never counted. The session also gets a TMPDIR of its
own: whatever a test, a server it started or a library they called leaves under it was left
by this session. At the end, what remains fails the run, then is removed (processes killed,
directory deleted), so a failing check does not leave the machine dirtier than it found it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

SESSION_VAR = "TUNER_TEST_SESSION"
# TensorFlow writes autograph's generated modules to TMPDIR and deletes them at exit (atexit,
# tensorflow/python/autograph/pyct/loader.py): the pytest process itself exits after the check,
# and a server a test SIGKILLs on purpose never runs atexit. Removed with the directory.
# platformdirs' per-user runtime directory (`runtime-<uid>` when XDG_RUNTIME_DIR is unset):
# pgserver keeps the lock file every PostgreSQL server of the user shares there, by design.
TOLERATED_PREFIXES = ("__autograph_generated_file", "runtime-")
# A process SIGTERMed by the last teardown, or an xdist worker shutting down, may still be
# exiting when the check starts.
GRACE_S = 10.0


@dataclass
class Leftovers:
    processes: list[str] = field(default_factory=list)
    sockets: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.processes or self.sockets or self.files)

    def lines(self) -> list[str]:
        return (
            [f"process still running: {p}" for p in self.processes]
            + [f"socket still listening: {s}" for s in self.sockets]
            + [f"temporary file left: {f}" for f in self.files]
        )


def begin() -> Path:
    """Mark this process's environment (inherited by all it starts) and give the session its
    own TMPDIR; returns the session's directory. Call once, before any test or worker."""
    # pytest's own tmp_path directories stay where they always are (and keep their retention).
    os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", tempfile.gettempdir())
    root = Path(tempfile.mkdtemp(prefix="tuner-tests-"))
    (root / "tmp").mkdir()
    (root / "findings").mkdir()
    os.environ[SESSION_VAR] = str(root)
    os.environ["TMPDIR"] = str(root / "tmp")
    tempfile.tempdir = str(root / "tmp")
    return root


def session_root() -> Path | None:
    value = os.environ.get(SESSION_VAR)
    return Path(value) if value else None


def listening_sockets(pid: int) -> list[str]:
    """The TCP ports a process listens on (an in-process server a test never stopped)."""
    with contextlib.suppress(psutil.Error):
        return [
            f"{c.laddr.ip}:{c.laddr.port} (pid {pid})"
            for c in psutil.Process(pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
    return []


def note_worker_findings(root: Path, worker: str) -> None:
    """In an xdist worker, at its end: its own listening sockets, for the controller to read
    (the worker is gone by the time the controller checks)."""
    found = listening_sockets(os.getpid())
    if found:
        (root / "findings" / f"{worker}.txt").write_text("\n".join(found) + "\n")


def tmp_entries(root: Path) -> set[str]:
    return {path.name for path in (root / "tmp").iterdir()}


def note_new_entries(root: Path, before: set[str], test: str, worker: str) -> None:
    """Which test was running (with, under xdist, whatever ran beside it) when an entry that
    is still there appeared in the session's TMPDIR: the report names it."""
    new = tmp_entries(root) - before
    if new:
        with (root / "findings" / f"tmp-{worker}.tsv").open("a") as out:
            out.writelines(f"{name}\t{test}\n" for name in sorted(new))


def _ours(root: Path, exclude: set[int]) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter():
        if process.pid in exclude:
            continue
        with contextlib.suppress(psutil.Error):
            if process.status() == psutil.STATUS_ZOMBIE:
                continue
            if process.environ().get(SESSION_VAR) == str(root):
                found.append(process)
    return found


def _describe(process: psutil.Process) -> str:
    with contextlib.suppress(psutil.Error):
        return f"pid {process.pid}: {' '.join(process.cmdline())[:300]}"
    return f"pid {process.pid}"


def collect(root: Path, grace_s: float = GRACE_S) -> Leftovers:
    """Everything of this session still there, in the controller (or the only process)."""
    me = os.getpid()
    deadline = time.monotonic() + grace_s
    processes = _ours(root, {me})
    while processes and time.monotonic() < deadline:
        time.sleep(0.2)
        processes = _ours(root, {me})
    left = Leftovers(processes=[_describe(p) for p in processes])
    left.sockets = listening_sockets(me)
    appeared: dict[str, str] = {}
    for finding in sorted((root / "findings").iterdir()):
        if finding.suffix == ".tsv":
            for line in finding.read_text().splitlines():
                name, test = line.split("\t", 1)
                appeared.setdefault(name, test)
        else:
            left.sockets += finding.read_text().splitlines()
    for name in sorted(tmp_entries(root)):
        if not name.startswith(TOLERATED_PREFIXES):
            during = f" (appeared during {appeared[name]})" if name in appeared else ""
            left.files.append(f"{root / 'tmp' / name}{during}")
    return left


def clean_up(root: Path) -> None:
    """Kill what is left of this session and remove its directory."""
    for process in _ours(root, {os.getpid()}):
        with contextlib.suppress(psutil.Error):
            process.kill()
    shutil.rmtree(root, ignore_errors=True)

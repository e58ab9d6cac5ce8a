"""The processes the tuner runs (model server, service, Locust): started alike, stopped alike.

Each starts in a session (and process group) of its own, so a Ctrl-C in the tuner's terminal
reaches the tuner only and the tuner stops them in order. Stopping is SIGTERM (a clean exit:
logs flushed, Locust's CSVs written), a bounded wait, then SIGKILL to the whole group, so the
children a process started (uvicorn's or Locust's workers) never outlive it, even when it
hangs. Processes found by `tuner/coordination/leftovers.py` are not our children: `stop_processes`
stops them the same way through psutil.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

log = logging.getLogger("tuner")


def start_in_new_session(
    cmd: Sequence[str],
    output: IO[bytes],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: Sequence[int] | None = None,
) -> subprocess.Popen:
    """`cmd` with stdout and stderr into `output`, no stdin, in a new session; `env` defaults
    to ours with unbuffered Python output, so a log tail is up to date when it is read.
    `cpus`: its CPU affinity, set in the child before it executes, so every thread it ever
    starts inherits it."""
    return subprocess.Popen(
        list(cmd),
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=dict(env) if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"},
        start_new_session=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )


def stop_group(proc: subprocess.Popen, timeout_s: float, kill_event: str) -> int | None:
    """SIGTERM, up to `timeout_s` for it to exit, then SIGKILL to its whole process group
    (whatever it left behind goes too); returns the exit code. `kill_event` names the log
    line written when the wait ran out (e.g. "server_kill backend=binary")."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        # A stopped (SIGSTOPped, hung) group would hold the SIGTERM until the wait runs out.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGCONT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "event=%s pid=%d reason=no_exit_after_sigterm waited_s=%g",
                kill_event,
                proc.pid,
                timeout_s,
            )
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


def stop_child(proc: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGTERM, up to `timeout_s` for it to exit, then SIGKILL to it alone; returns the exit
    code. For a child that shares our process group, which `stop_group` must not signal."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def stop_processes(processes: list[psutil.Process], timeout_s: float) -> None:
    """SIGTERM each, up to `timeout_s` for all to exit, then SIGKILL the rest."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout_s)


def log_tail(path: Path | None, lines: int = 30) -> str:
    """The last `lines` lines of a log; "" when there is none (yet)."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on `host` a moment ago (the kernel picks it)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

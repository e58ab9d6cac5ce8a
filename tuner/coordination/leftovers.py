"""Processes a killed tuner left running, found and stopped by the next run of its study.

A tuner stopped by SIGKILL or the OOM killer cannot stop the model server, the service or
Locust it started: they keep their memory, their CPU and, with fixed ports, the ports the next
run needs. So every process a tuner starts inherits a marker naming the study's working
directory and the tuner (pid and start time, which together survive pid reuse). The next run
of the same study on this host stops the marked processes whose tuner is gone; the processes
of a tuner that is still running are left alone. Containers carry the same marker as a label
(tuner/servers/docker_engine.py) and are judged by `owner_gone` the same way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psutil

from tuner.process import stop_processes

OWNER_ENV = "TUNER_OWNER"
STOP_TIMEOUT_S = 5.0


def _marker(workdir: Path, pid: int, started: float) -> str:
    return f"{pid}:{started:.3f}:{Path(workdir).resolve()}"


def _parse(marker: str) -> tuple[int, float, str] | None:
    pid, _, rest = marker.partition(":")
    started, _, workdir = rest.partition(":")
    try:
        return int(pid), float(started), workdir
    except ValueError:
        return None


def current_owner() -> str | None:
    """The marker of the tuner running this process's study, when inside `marking_children`."""
    return os.environ.get(OWNER_ENV)


def owner_workdir(marker: str) -> str | None:
    parsed = _parse(marker)
    return parsed[2] if parsed else None


def owner_gone(marker: str) -> bool:
    """True when the tuner named by `marker` (on this host) is no longer running."""
    parsed = _parse(marker)
    return parsed is not None and not _alive(parsed[0], parsed[1])


def _alive(pid: int, started: float) -> bool:
    try:
        return abs(psutil.Process(pid).create_time() - started) < 0.01
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@contextlib.contextmanager
def marking_children(workdir: Path) -> Iterator[None]:
    """While the block runs, every process started (they inherit the environment) carries
    this tuner's marker."""
    me = psutil.Process()
    previous = os.environ.get(OWNER_ENV)
    os.environ[OWNER_ENV] = _marker(workdir, me.pid, me.create_time())
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(OWNER_ENV, None)
        else:
            os.environ[OWNER_ENV] = previous


def find_leftovers(workdir: Path) -> list[psutil.Process]:
    """Running processes marked for `workdir` whose tuner is gone."""
    wanted = str(Path(workdir).resolve())
    found = []
    for process in psutil.process_iter():
        with contextlib.suppress(psutil.Error):
            marker = process.environ().get(OWNER_ENV)
            parsed = _parse(marker) if marker else None
            if parsed is None or parsed[2] != wanted or _alive(parsed[0], parsed[1]):
                continue
            found.append(process)
    return found


def stop_leftovers(workdir: Path) -> list[str]:
    """Stop (SIGTERM, a bounded wait, then SIGKILL) what a killed tuner of this study left
    running; returns a short description of each process stopped."""
    leftovers = find_leftovers(workdir)
    described = []
    for process in leftovers:
        with contextlib.suppress(psutil.Error):
            described.append(f"{process.pid} ({' '.join(process.cmdline()[:3])})")
    stop_processes(leftovers, STOP_TIMEOUT_S)
    return described

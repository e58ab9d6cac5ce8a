"""Finding and stopping what a killed tuner left running, with real processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tuner.coordination.leftovers import OWNER_ENV, find_leftovers, marking_children, stop_leftovers

SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


@pytest.fixture
def started() -> Iterator[list[subprocess.Popen]]:
    processes: list[subprocess.Popen] = []
    yield processes
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.wait()


def dead_tuner() -> tuple[int, float]:
    """The pid and start time of a process that has exited, like a SIGKILLed tuner."""
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    created = psutil.Process(process.pid).create_time()
    process.wait()
    return process.pid, created


def environ_of(pid: int) -> dict[str, str]:
    """/proc/PID/environ, once the kernel has set it up: Popen returns when exec closes the
    child's close-on-exec pipe, a moment before the new program's environment is mapped."""
    for _ in range(500):
        environ = psutil.Process(pid).environ()
        if environ:
            return environ
        time.sleep(0.01)
    return {}


def start_marked(started: list, marker: str) -> subprocess.Popen:
    process = subprocess.Popen(SLEEPER, env={**os.environ, OWNER_ENV: marker})
    started.append(process)
    return process


def test_only_the_orphans_of_this_study_are_stopped(tmp_path: Path, started: list) -> None:
    study, other_study = tmp_path / "runs" / "a", tmp_path / "runs" / "b"
    pid, created = dead_tuner()
    orphan = start_marked(started, f"{pid}:{created:.3f}:{study.resolve()}")
    other_orphan = start_marked(started, f"{pid}:{created:.3f}:{other_study.resolve()}")
    me = psutil.Process()
    live_tuners_child = start_marked(started, f"{me.pid}:{me.create_time():.3f}:{study.resolve()}")

    assert [p.pid for p in find_leftovers(study)] == [orphan.pid]
    stopped = stop_leftovers(study)
    assert len(stopped) == 1 and stopped[0].startswith(f"{orphan.pid} (")
    assert orphan.wait(timeout=10) is not None
    assert other_orphan.poll() is None  # another study's: not ours to stop
    assert live_tuners_child.poll() is None  # its tuner is alive
    assert stop_leftovers(study) == []


def test_children_started_while_marking_carry_the_marker(tmp_path: Path, started: list) -> None:
    assert OWNER_ENV not in os.environ
    with marking_children(tmp_path):
        child = subprocess.Popen(SLEEPER)
        started.append(child)
    assert OWNER_ENV not in os.environ  # restored: later processes are not marked
    marker = environ_of(child.pid)[OWNER_ENV]
    assert marker.startswith(f"{os.getpid()}:") and marker.endswith(str(tmp_path.resolve()))
    assert find_leftovers(tmp_path) == []  # this tuner is alive

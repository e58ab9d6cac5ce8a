"""Starting and stopping a process the tuner runs (tuner/process.py), on real processes: its
own session, its log, SIGTERM then SIGKILL to the whole group, a stopped one woken, the events
logged."""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import time
from pathlib import Path

import psutil
import pytest

from tuner.process import Child, spawn

# Prints its pid and its child's, then waits; SIGTERM is ignored when asked to.
PARENT = """
import signal, subprocess, sys, time
if sys.argv[1] == "ignore":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print("kid", kid.pid, flush=True)
if sys.argv[2] == "leave":
    sys.exit(3)
time.sleep(60)
"""


def start(tmp_path: Path, sigterm: str = "obey", then: str = "wait") -> tuple[Child, int]:
    child = spawn(
        "demo",
        [sys.executable, "-c", PARENT, sigterm, then],
        tmp_path / "demo.log",
        header="# demo\n",
        fields="x=1",
    )
    deadline = time.monotonic() + 30
    while "kid" not in child.log_tail():
        assert time.monotonic() < deadline, child.log_tail()
        time.sleep(0.05)
    kid = int(child.log_tail().split("kid")[1].split()[0])
    return child, kid


def gone(pid: int, wait_s: float = 10.0) -> bool:
    """Whether `pid` has exited (a zombie counts), waiting up to `wait_s` for it."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)


def test_a_child_has_its_own_session_and_appends_to_its_log(tmp_path: Path) -> None:
    (tmp_path / "demo.log").write_text("earlier\n")
    child, kid = start(tmp_path)
    try:
        assert os.getsid(child.pid) == child.pid
        assert os.getpgid(kid) == child.pid
        assert child.log_tail().splitlines()[:2] == ["earlier", "# demo"]
    finally:
        child.stop(10)


def test_sigterm_stops_the_whole_group_and_the_stop_is_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child, kid = start(tmp_path)
    with caplog.at_level(logging.INFO, logger="tuner"):
        code = child.stop(10)
    assert code == -signal.SIGTERM
    assert gone(kid)
    assert f"event=demo_stop x=1 exit_code={-signal.SIGTERM}" in caplog.text
    assert "demo_kill" not in caplog.text


def test_one_that_ignores_sigterm_is_killed_with_its_group(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child, kid = start(tmp_path, sigterm="ignore")
    with caplog.at_level(logging.INFO, logger="tuner"):
        code = child.stop(0.5)
    assert code == -signal.SIGKILL
    assert gone(kid)
    assert f"event=demo_kill x=1 pid={child.pid} reason=no_exit_after_sigterm" in caplog.text
    assert f"event=demo_stop x=1 exit_code={-signal.SIGKILL}" in caplog.text


def test_a_stopped_one_is_woken_to_take_its_sigterm(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    child, kid = start(tmp_path)
    os.killpg(child.pid, signal.SIGSTOP)
    with caplog.at_level(logging.INFO, logger="tuner"):
        code = child.stop(10)
    assert code == -signal.SIGTERM
    assert gone(kid)
    assert "demo_kill" not in caplog.text


def test_reaping_a_dead_one_takes_what_its_group_left(tmp_path: Path) -> None:
    child, kid = start(tmp_path, then="leave")
    deadline = time.monotonic() + 30
    while child.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert not gone(kid, wait_s=0)
    assert child.reap() == 3
    assert gone(kid), "the group's leftover still runs"


LAUNCHER = "model_server/launcher.py"


def test_no_module_but_tuner_process_starts_a_process() -> None:
    """One module starts and stops every process (issue 20): a second way in would be a second
    set of stop rules, and a second place for a child to outlive the tuner. The one exception
    is the model server's launcher, which forks the servers the tuner asks it for (each in a
    session of its own, stopped by these rules through tuner/servers/launcher.py)."""
    packages = Path(__file__).resolve().parents[2]
    starters = re.compile(
        r"subprocess\.(Popen|run|call|check_call|check_output)\(|os\.(fork|spawn)"
    )
    found = [
        f"{path.relative_to(packages)}:{number}"
        for name in ("tuner", "service", "model_server", "search_spaces")
        for path in sorted((packages / name).rglob("*.py"))
        if path.relative_to(packages).as_posix() not in ("tuner/process.py", LAUNCHER)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if starters.search(line)
    ]
    assert found == []
    assert "os.fork()" in (packages / LAUNCHER).read_text()  # the exception is still needed

"""The session-end check fails a run that leaves something behind, and removes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.support.hygiene import SESSION_VAR

REPO_ROOT = Path(__file__).resolve().parents[2]
PROBE = Path(__file__).with_name("leaky_probe.py")


def sleepers() -> set[int]:
    """`sleep 600` processes of the probe's sessions (not of this one, nor anyone else's)."""
    mine = os.environ[SESSION_VAR]
    found = set()
    for process in psutil.process_iter(["cmdline"]):
        try:
            marked = process.environ().get(SESSION_VAR, "")
        except psutil.Error:
            continue
        if process.info["cmdline"] == ["sleep", "600"] and marked and marked != mine:
            found.add(process.pid)
    return found


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["plain", "xdist"])
def test_a_leaking_run_fails_and_is_cleaned_up(workers: list[str]) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *workers, str(PROBE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed" in run.stdout
    out = run.stdout
    assert "left behind by the tests" in out
    assert "process still running: pid" in out and "sleep 600" in out
    assert "socket still listening: 127.0.0.1:" in out
    assert "temporary file left: " in out and "/tmp/leaky-" in out
    assert "(appeared during tests/support/leaky_probe.py::test_leaves_a_process" in out
    assert not sleepers()
    left = out.split("temporary file left: ")[1].split()[0]
    assert not Path(left).exists()

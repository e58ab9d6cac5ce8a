"""The stub prediction service (tests/tuner/load/stub_predict_service.py) as a real HTTP
process on loopback: what the load generator and the capacity search are tested and
benchmarked against when the figure must not depend on the model server."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tuner.process import free_port, stop_child

STUB = Path(__file__).parents[1] / "tuner" / "load" / "stub_predict_service.py"


@dataclass(frozen=True)
class Stub:
    url: str
    pid: int


@contextlib.contextmanager
def stub_target(*args: str, start_timeout_s: float = 30.0) -> Iterator[Stub]:
    """Started with the stub's own flags (e.g. "--service-s", "0.005"); always stopped."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(STUB), "--port", str(port), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout_s
        while True:
            try:
                urllib.request.urlopen(f"{url}/stats", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the stub did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.1)
        yield Stub(url, proc.pid)
    finally:
        stop_child(proc, 10)

"""Tests marked `alone` run with no other test of the session beside them.

Under pytest-xdist each worker runs one test at a time, side by side; a test whose figures
depend on the CPU it gets (a capacity found against a timed stub, a latency band) would
measure its neighbour too. Every test holds the session's lock shared; an `alone` test holds it
exclusive, so it waits for the running tests to end and the next ones wait for it. A turnstile
(a second lock every test passes through) keeps a stream of shared holders from starving it.
Without xdist nothing runs beside a test and no lock is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path

MARK = "alone"


@contextlib.contextmanager
def _locked(path: Path, mode: int) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, mode)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def turn(directory: Path, alone: bool) -> Iterator[None]:
    """Held around one test: exclusive when `alone`, shared otherwise."""
    mode = fcntl.LOCK_EX if alone else fcntl.LOCK_SH
    with contextlib.ExitStack() as held:
        with _locked(directory / "turnstile.lock", mode):
            held.enter_context(_locked(directory / "tests.lock", mode))
        yield

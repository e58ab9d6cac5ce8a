"""Tests marked `alone` never run beside the rest of the session.

Under pytest-xdist each worker runs one test at a time, side by side; a test whose figures
depend on the CPU it gets (a capacity found against a timed stub, a latency band) would
measure its neighbour too. Those tests are light themselves (a stub that sleeps its service
time, a generator at a few hundred req/s: ~10% of a core), so they may run beside each other;
what they must not meet is a whole study, a TensorFlow import, a Chromium render.

So the session has one room and two kinds of tests: at any moment the room holds tests of one
kind only, any number of them. An `alone` test waiting for the room keeps new tests of the
other kind out, so a stream of short tests cannot starve it. The room's state is a small file
under the session's directory, changed under an flock; a test waiting for its turn polls it.
Without xdist nothing runs beside a test and no lock is taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import time
from collections.abc import Iterator
from pathlib import Path

MARK = "alone"
POLL_S = 0.1
ALONE, OTHERS = "alone", "others"


@contextlib.contextmanager
def _state(directory: Path) -> Iterator[dict]:
    """The room's state, read and written back under an exclusive lock."""
    with (directory / "room.lock").open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            path = directory / "room.json"
            state = json.loads(path.read_text()) if path.exists() else {}
            state.setdefault("kind", None)
            state.setdefault("inside", 0)
            state.setdefault("alone_waiting", 0)
            yield state
            path.write_text(json.dumps(state))
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_enter(directory: Path, kind: str, waiting: bool) -> tuple[bool, bool]:
    """(entered, now counted as a waiting `alone` test)."""
    with _state(directory) as state:
        free = state["inside"] == 0 or state["kind"] == kind
        if kind == OTHERS and state["alone_waiting"] > 0:
            free = False  # an alone test is waiting: let the room empty for it
        if free:
            state["kind"] = kind
            state["inside"] += 1
            if waiting:
                state["alone_waiting"] -= 1
            return True, False
        if kind == ALONE and not waiting:
            state["alone_waiting"] += 1
            return False, True
        return False, waiting


def _leave(directory: Path) -> None:
    with _state(directory) as state:
        state["inside"] -= 1
        if state["inside"] == 0:
            state["kind"] = None


@contextlib.contextmanager
def turn(directory: Path, alone: bool) -> Iterator[None]:
    """Held around one test: in the room with its own kind only."""
    kind = ALONE if alone else OTHERS
    waiting = False
    while True:
        entered, waiting = _try_enter(directory, kind, waiting)
        if entered:
            break
        time.sleep(POLL_S)
    try:
        yield
    finally:
        _leave(directory)

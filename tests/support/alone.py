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
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

MARK = "alone"
DEFAULT_SECONDS = 10.0  # what an `alone` test without `seconds=` is expected to take
POLL_S = 0.1
ALONE, OTHERS = "alone", "others"


def expected_seconds(item: object) -> float:
    """`@pytest.mark.alone(seconds=N)`: how long the test takes here, for the session's order."""
    mark = item.get_closest_marker(MARK)
    return float(mark.kwargs.get("seconds", DEFAULT_SECONDS)) if mark is not None else 0.0


def session_order(items: list) -> None:
    """Sort the session's tests: modules with an `alone` test first, longest first by their
    `alone` tests' expected seconds (so the workers end the `alone` phase together: every
    other test waits for it), each module's `alone` tests first in it; then the modules with
    the most slow tests (the longest modules start while the workers are free and short ones
    fill in after); the rest in collection order. A module in the `alone` phase must hold no
    other test: it would wait for the phase to end and keep its worker from the next module."""
    alone_s: Counter = Counter()
    for item in items:
        alone_s[item.path] += expected_seconds(item)
    slow = Counter(item.path for item in items if item.get_closest_marker("slow"))
    items.sort(
        key=lambda item: (
            item.get_closest_marker(MARK) is None,
            -alone_s[item.path],
            -slow[item.path],
        )
    )


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

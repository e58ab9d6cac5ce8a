"""Pauses of this process's own making: the collector's settings for a long-lived server, and a
probe that reports every pause long enough to delay a request.

Why: TF Serving is C++ and has no garbage collector, so a collection of ours that stalls the
event loop for 30-100 ms (a full collection walks every object TensorFlow's imports left
behind) is a pause the configuration being measured does not have, yet it fails a load
step's window. `tune_collector()` runs once start-up is done: `gc.freeze()` moves everything
allocated so far out of the collector's reach (it is never freed anyway), and a higher young
threshold makes the young collections rarer (a server allocates a few short-lived objects
per request; the default 700 triggers a collection every few requests), but not so rare that
one collection is itself a pause: at 50,000 the stand-in's young generation grew to that many
objects between collections, and each took 20-72 ms on the 62-ms host (a stall of the model
server in 6 of 80 steps at 250 req/s); at 5,000 none took over 6.5 ms, with the steps' p95 and
decided passes unchanged (bench/RESULTS.md).

The probe (`watch`) records a collection longer than MIN_PAUSE_MS (a `gc.callbacks` hook),
and an event loop that woke more than MIN_PAUSE_MS late (asyncio or gevent), as one JSON line
`{"p": process, "pid", "t": monotonic end, "ms", "kind"}` appended to the file named by
TUNER_PAUSE_LOG; without it nothing is written. CLOCK_MONOTONIC is system-wide on Linux, so
the tuner places each pause in the load steps' windows (tuner/capacity/pauses.py).
`TUNER_GC_TUNING=0` keeps the interpreter's defaults (to measure the "before").

The prediction service calls it too (its image copies model_server/ beside service/).
"""

from __future__ import annotations

import gc
import json
import os
import time

ENV_LOG = "TUNER_PAUSE_LOG"
ENV_TUNING = "TUNER_GC_TUNING"
MIN_PAUSE_MS = 2.0  # shorter pauses are noise next to a network round trip
LOOP_TICK_S = 0.02  # the lag probe's sleep
# Young collections every 5,000 allocations (not 700, nor 50,000: see above); the older
# generations as often, relative to the young ones, as by default.
THRESHOLDS = (5_000, 10, 10)


class PauseProbe:
    def __init__(self, process: str, path: str | None) -> None:
        self.process = process
        self.path = path
        self._fd: int | None = None
        self._started: float | None = None

    def write(self, end: float, ms: float, kind: str) -> None:
        if self.path is None or ms < MIN_PAUSE_MS:
            return
        line = {"p": self.process, "pid": os.getpid(), "t": end, "ms": round(ms, 2), "kind": kind}
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        os.write(self._fd, (json.dumps(line, separators=(",", ":")) + "\n").encode())

    def on_gc(self, phase: str, info: dict) -> None:
        if phase == "start":
            self._started = time.monotonic()
        elif self._started is not None:
            end = time.monotonic()
            self.write(end, (end - self._started) * 1000.0, f"gc{info.get('generation', '?')}")
            self._started = None


def tune_collector() -> bool:
    """Freeze what start-up allocated and raise the thresholds; False when TUNER_GC_TUNING=0."""
    if os.environ.get(ENV_TUNING, "1") == "0":
        return False
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
    return True


def watch(process: str) -> PauseProbe:
    """Hook the collector of this process; the loop-lag probe is started separately."""
    probe = PauseProbe(process, os.environ.get(ENV_LOG) or None)
    if probe.path is not None:
        gc.callbacks.append(probe.on_gc)
    return probe


async def watch_loop(probe: PauseProbe, tick_s: float = LOOP_TICK_S) -> None:
    """Run as an asyncio task: reports each wake-up later than the tick by MIN_PAUSE_MS."""
    import asyncio

    while probe.path is not None:
        before = time.monotonic()
        await asyncio.sleep(tick_s)
        after = time.monotonic()
        probe.write(after, (after - before - tick_s) * 1000.0, "loop")


def start(process: str):
    """Tune the collector and start both probes from a running event loop; the lag probe's
    task is returned for the caller to cancel at shutdown."""
    import asyncio

    tune_collector()  # first: its own full collection is start-up, not a pause to report
    probe = watch(process)
    return asyncio.create_task(watch_loop(probe))

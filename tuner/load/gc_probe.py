"""The Locust process's pauses: the collector tuned like the servers' (model_server/pauses.py)
and a gevent loop-lag probe, so a pause of the load generator's own making neither delays
arrivals nor hides in a step's latency unseen."""

from __future__ import annotations

import time

import gevent

from model_server import pauses


def start(process: str = "load_generator") -> None:
    pauses.tune_collector()  # first: its own full collection is start-up, not a pause
    probe = pauses.watch(process)
    if probe.path is not None:
        gevent.spawn(_lag, probe)


def _lag(probe: pauses.PauseProbe, tick_s: float = pauses.LOOP_TICK_S) -> None:
    while True:
        before = time.monotonic()
        gevent.sleep(tick_s)
        after = time.monotonic()
        probe.write(after, (after - before - tick_s) * 1000.0, "loop")

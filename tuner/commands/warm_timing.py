"""How long one request takes on a warm model server, and the capacity search sized from it.

TensorFlow's first calls of a freshly loaded model are slow (function tracing, oneDNN
primitive creation, first allocations), and not only the very first one. A config whose SLO,
first probe and trial budget come from a cold figure starts its search far below the knee and
runs out of budget before reaching it. So requests are sent until their latencies settle (the
median of the last WINDOW stops falling), bounded by a count and a time, and only then is a
batch timed. "Stopped falling" alone would take a flat cold stretch for a warm server, so the
warm-up is also at least MIN_WARMUP requests and MIN_WARMUP_S. (init's 44 ms on the image
model was not a cold start but the embedded server's REST connections without TCP_NODELAY,
fixed in model_server/server.py.)"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

WINDOW = 10  # settled: the median of the last WINDOW is no lower than that of the WINDOW before
SETTLE_SHARE = 0.95  # ... by more than 5%
MIN_WARMUP = 50  # and MIN_WARMUP_S: a flat cold stretch must not pass for settled
MIN_WARMUP_S = 2.0
MAX_WARMUP_REQUESTS = 2000
MAX_WARMUP_S = 30.0
TIMED_REQUESTS = 30

# Sizing the search (see search_budget).
BATCHING_HEADROOM = 4.0  # batching can multiply the serial rate: the search must reach this
START_SHARE = 1 / 8  # the first probe, as a share of the serial estimate
BISECTION_STEPS = 5  # bisecting a factor-2 bracket to load.precision (5%), plus a second look
EXTRA_STEPS = 1  # the low-rate check
STEP_OVERHEAD_S = 6.0  # per step beyond its load: control lead, drain, scrapes, extensions


@dataclass(frozen=True)
class WarmTiming:
    """The median of `timed` requests sent after `warmup_requests` warm-up requests."""

    median_ms: float
    timed: int
    warmup_requests: int
    warmup_s: float
    settled: bool  # False: the warm-up bound was reached while latencies still fell

    def describe(self) -> str:
        how = "settled" if self.settled else "still falling when the warm-up bound was reached"
        return (
            f"median of {self.timed} requests after {self.warmup_requests} warm-up requests "
            f"({self.warmup_s:.1f} s, latencies {how})"
        )


def settled(latencies_ms: list[float], window: int = WINDOW) -> bool:
    """Have the latencies stopped falling: is the median of the last `window` at least
    SETTLE_SHARE of the median of the `window` before?"""
    if len(latencies_ms) < 2 * window:
        return False
    last = statistics.median(latencies_ms[-window:])
    before = statistics.median(latencies_ms[-2 * window : -window])
    return last >= SETTLE_SHARE * before


def warm_median_ms(
    send: Callable[[], float],
    *,
    max_warmup_requests: int = MAX_WARMUP_REQUESTS,
    max_warmup_s: float = MAX_WARMUP_S,
    timed: int = TIMED_REQUESTS,
    clock: Callable[[], float] = time.monotonic,
) -> WarmTiming:
    """Warm up with `send()` (one request, returning its latency in ms) until the latencies
    settle (after at least MIN_WARMUP requests and MIN_WARMUP_S) or a bound is reached, then
    time `timed` more; the median of those."""
    started = clock()
    warmup: list[float] = []
    while len(warmup) < max_warmup_requests:
        warmup.append(send())
        spent = clock() - started
        if len(warmup) >= MIN_WARMUP and spent >= MIN_WARMUP_S and settled(warmup):
            break
        if spent >= max_warmup_s:
            break
    elapsed = clock() - started
    timings = [send() for _ in range(timed)]
    return WarmTiming(statistics.median(timings), timed, len(warmup), elapsed, settled(warmup))


@dataclass(frozen=True)
class SearchBudget:
    serial_rps: float  # the estimated capacity without batching: 1000 / latency x cores
    start_rps: float
    max_steps: int
    max_trial_s: float
    max_rps: float
    doublings: int


def search_budget(
    latency_ms: float, cores: int, warmup_s: float, measure_s: float, growth: float = 2.0
) -> SearchBudget:
    """start_rps, max_steps and max_trial_s so that growing by `growth` from start_rps reaches
    BATCHING_HEADROOM x the serial estimate within max_steps, with steps left to bisect and
    for the low-rate check, and max_trial_s leaves time for all of those steps."""
    serial = 1000.0 / max(latency_ms, 0.01) * max(1, cores)
    start = max(5.0, float(math.ceil(serial * START_SHARE)))
    doublings = max(1, math.ceil(math.log(BATCHING_HEADROOM * serial / start, growth)))
    steps = doublings + BISECTION_STEPS + EXTRA_STEPS
    trial_s = steps * (warmup_s + measure_s + STEP_OVERHEAD_S)
    reach = start * growth**doublings
    max_rps = max(5000.0, 1000.0 * math.ceil(reach / 1000.0))
    return SearchBudget(serial, start, steps, 10.0 * math.ceil(trial_s / 10.0), max_rps, doublings)

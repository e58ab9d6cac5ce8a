"""The open-loop arrival process: Poisson arrivals on an absolute clock, and how a rate and a
ceiling are split across Locust processes.

Pure (no gevent, no Locust) so the tuner and the tests can reproduce exactly the arrival
times a Locust process schedules. Times are offsets from the step's start, each the
previous one plus an exponential gap: a late wake-up of the scheduler never shifts later
arrivals (no sleep drift), it only sends the due ones late.

Offered-rate accuracy. The count of a Poisson process over a window of N expected arrivals
varies by 1/sqrt(N) (1,000 arrivals: +-3.2%; 3% at two standard deviations needs ~4,400),
so a short window at a modest rate would miss its target by several percent by chance
alone. Each step's stream is therefore a Poisson process conditioned on its count in the
measurement window: rate x window arrivals per process (the fraction rounded at random, so
unbiased), placed
independently and uniformly in the window, which is what a Poisson process looks like
given its count (exponential gaps, bursts and all). Warm-up and the time after the window
are plain Poisson at the rate.

Seeds depend on the process index and the process's rate, so the same rate gets the same
arrivals in every trial: configurations are compared on identical traffic (common random
numbers), and a repeated measurement differs only by the server.
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Iterator

SEED = "tuner-open-loop-v2"


def share(total: int, parts: int, index: int) -> int:
    """Process `index`'s whole share of `total` over `parts` processes (shares sum to it)."""
    base, extra = divmod(total, parts)
    return base + (1 if index < extra else 0)


def process_rate(rate_rps: float, processes: int) -> float:
    """Each process offers an equal share: independent Poisson streams add up to one."""
    return rate_rps / processes


class PoissonArrivals:
    """Arrival offsets (seconds from the step's start) of a Poisson process at `rate_rps`,
    starting at `start_s`."""

    def __init__(self, rate_rps: float, seed: str, start_s: float = 0.0) -> None:
        if not (rate_rps > 0 and math.isfinite(rate_rps)):
            raise ValueError(f"rate must be positive and finite, not {rate_rps!r}")
        self.rate_rps = rate_rps
        self._rng = random.Random(seed)
        self._t = start_s

    def __iter__(self) -> Iterator[float]:
        return self

    def __next__(self) -> float:
        self._t += self._rng.expovariate(self.rate_rps)
        return self._t


def step_arrivals(
    rate_rps: float, process_index: int, window_start_s: float, window_s: float
) -> Iterator[float]:
    """One process's arrival offsets for a step: Poisson through the warm-up, exactly
    rate x window (rounded at random) uniform arrivals in the window that starts at
    `window_start_s`, then Poisson again. Drawn eagerly up to the window's end (the
    caller does so before the step starts), lazily after it."""
    seed = f"{SEED}/{process_index}/{rate_rps!r}"
    window_end = window_start_s + window_s
    offsets = list(
        itertools.takewhile(
            lambda t: t < window_start_s, PoissonArrivals(rate_rps, seed + "/warmup")
        )
    )
    rng = random.Random(seed + "/window")
    expected = rate_rps * window_s
    count = math.floor(expected) + (rng.random() < expected - math.floor(expected))
    offsets += sorted(window_start_s + rng.random() * window_s for _ in range(count))
    return itertools.chain(offsets, PoissonArrivals(rate_rps, seed + "/after", window_end))


def poisson_noise(rate_rps: float, window_s: float) -> float:
    """Relative standard deviation of a plain Poisson count over a window."""
    return 1.0 / math.sqrt(rate_rps * window_s)


def scheduled_count(
    rate_rps: float,
    processes: int,
    window_start_s: float,
    window_s: float,
    interval_s: float,
    intervals: range,
) -> int:
    """How many arrivals the schedules of all `processes` hold in the given intervals of a
    step (each arrival counted in interval int(offset / interval_s), as the recorder counts
    it): what the generator was due to send there, whatever the Poisson draw made of the
    nominal rate (an extended window or one cut short is plain Poisson or a share of the
    window's arrivals, not rate x seconds)."""
    if rate_rps <= 0 or not intervals:
        return 0
    rate = process_rate(rate_rps, processes)
    count = 0
    for index in range(processes):
        for offset in step_arrivals(rate, index, window_start_s, window_s):
            slot = int(offset / interval_s)
            if slot >= intervals.stop:
                break
            count += slot in intervals
    return count

"""The open-loop arrival process: Poisson arrivals on an absolute clock, and how a rate and a
ceiling are split across Locust processes.

Pure (no gevent, no Locust) so the tuner and the tests can reproduce exactly the arrival
times a Locust process schedules. Times are offsets from the step's start, each the
previous one plus an exponential gap: a late wake-up of the scheduler never shifts later
arrivals (no sleep drift), it only sends the due ones late.

Offered-rate accuracy. The count of a Poisson process over a window of N expected arrivals
varies by 1/sqrt(N) (1,000 arrivals: +-3.2%; 3% at two standard deviations needs ~4,400),
so a short window at a modest rate would miss its target by several percent by chance
alone. Each step's stream is therefore drawn conditioned on its window count: seeds are
tried in a fixed order until the stream puts within WINDOW_TOLERANCE (1%, or one arrival)
of rate x window arrivals into the measurement window. Given its count, a Poisson process
places its arrivals independently and uniformly, so inside the window the traffic is still
exactly Poisson-like (exponential gaps, bursts and all); only the total is pinned.

Seeds depend on the process index and the process's rate, so the same rate gets the same
arrivals in every trial: configurations are compared on identical traffic (common random
numbers), and a repeated measurement differs only by the server.
"""

from __future__ import annotations

import math
import random

SEED = "tuner-open-loop-v1"
WINDOW_TOLERANCE = 0.01
MAX_SEED_TRIES = 500


def share(total: int, parts: int, index: int) -> int:
    """Process `index`'s whole share of `total` over `parts` processes (shares sum to it)."""
    base, extra = divmod(total, parts)
    return base + (1 if index < extra else 0)


def process_rate(rate_rps: float, processes: int) -> float:
    """Each process offers an equal share: independent Poisson streams add up to one."""
    return rate_rps / processes


class PoissonArrivals:
    """Arrival offsets (seconds from the step's start) of a Poisson process at `rate_rps`.

    Offsets already drawn are kept in `drawn` until consumed, so a stream examined by
    `count_between` is then sent unchanged.
    """

    def __init__(self, rate_rps: float, seed: str) -> None:
        if not (rate_rps > 0 and math.isfinite(rate_rps)):
            raise ValueError(f"rate must be positive and finite, not {rate_rps!r}")
        self.rate_rps = rate_rps
        self.seed = seed
        self._rng = random.Random(seed)
        self._t = 0.0
        self.drawn: list[float] = []
        self._pos = 0

    def _draw(self) -> float:
        self._t += self._rng.expovariate(self.rate_rps)
        self.drawn.append(self._t)
        return self._t

    def count_between(self, start: float, end: float) -> int:
        """Arrivals with start <= offset < end (draws as far as `end`)."""
        while not self.drawn or self.drawn[-1] < end:
            self._draw()
        return sum(1 for t in self.drawn if start <= t < end)

    def __iter__(self) -> PoissonArrivals:
        return self

    def __next__(self) -> float:
        if self._pos < len(self.drawn):
            t = self.drawn[self._pos]
            self._pos += 1
            if self._pos > 4096:  # consumed offsets are not needed again
                del self.drawn[: self._pos]
                self._pos = 0
            return t
        self._draw()
        self._pos = len(self.drawn)
        return self._t


def step_arrivals(
    rate_rps: float, process_index: int, window_start_s: float, window_s: float
) -> PoissonArrivals:
    """One process's stream for a step: the first seed (in a fixed order) whose count in
    the window [window_start_s, window_start_s + window_s) is within WINDOW_TOLERANCE of
    rate x window; the closest one if none is within MAX_SEED_TRIES."""
    expected = rate_rps * window_s
    allowed = max(WINDOW_TOLERANCE * expected, 1.0)
    end = window_start_s + window_s
    best: tuple[float, PoissonArrivals] | None = None
    for attempt in range(MAX_SEED_TRIES):
        stream = PoissonArrivals(rate_rps, f"{SEED}/{process_index}/{rate_rps!r}/{attempt}")
        miss = abs(stream.count_between(window_start_s, end) - expected)
        if miss <= allowed:
            return stream
        if best is None or miss < best[0]:
            best = (miss, stream)
    assert best is not None
    return PoissonArrivals(best[1].rate_rps, best[1].seed)


def arrival_counts(
    rate_rps: float,
    processes: int,
    interval_s: float,
    intervals: int,
    window_start_s: float,
    window_s: float,
) -> list[int]:
    """How many arrivals all processes schedule in each of a step's first `intervals`
    intervals at a total `rate_rps`: exactly what the generator must send when the ceiling
    is not reached."""
    counts = [0] * intervals
    end = interval_s * intervals
    rate = process_rate(rate_rps, processes)
    for index in range(processes):
        for t in step_arrivals(rate, index, window_start_s, window_s):
            if t >= end:
                break
            counts[int(t / interval_s)] += 1
    return counts


def poisson_noise(rate_rps: float, window_s: float) -> float:
    """Relative standard deviation of a plain Poisson count over a window."""
    return 1.0 / math.sqrt(rate_rps * window_s)

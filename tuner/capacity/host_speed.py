"""The machine's own slow spells, reported as pauses of the "host".

A virtual machine's host can give its cores less for a while: on the 2-core machine of
bench/RESULTS.md, idle, a fixed integer loop took 1.8-2.1x its usual CPU time for ~15 s (One
configuration at one fixed rate). A load step's
window inside such a spell reads the configuration at about half its capacity, and the
window says nothing about the configuration.

`HostWatch`, a thread of the tuner, times a fixed loop every PERIOD_S in thread CPU time, so
waiting for a core (the bench's own load) does not count, only a slower core does: under the
bench's full load at 1900 req/s, a 50,000-step version of the loop timed every 0.5 s stayed
under 1.4x its median in 737 of 738 rounds, never over it twice in a row (bench/fixed_rate.py).
Two rounds in a row over SLOW_RATIO x the baseline (a low percentile of the last minute's
rounds) are a slow spell. Each such round is written to the study's pause file as a
pause of the "host" as long as the round's period (model_server/pauses.py), and the step
runner re-measures a failed window that one overlaps, as it does for a collection's pause.

A lasting change of speed is no spell, yet it moves every capacity: in one run of
bench/capacity_precision.py the loop took 51-54 ms (a 2-s probe of the same kind) in the first
trials and 59-61 ms in the last, and each configuration's capacity fell with it (r = -0.83,
about 2.5% of capacity per 1% of loop time). So the watch keeps its recent rounds, and each
trial records the median over its own restart and search (`loop_ms_since`, `host_loop_ms`).

The loop lives in the core's own caches, and the machine also moves where it does not: a
neighbour on the host competing for the shared cache and memory slows the model's reads of
its weights and activations, not an integer loop. In the two runs of
bench/capacity_precision.py whose repeated searches spread most (40 searches), the time of
random reads in a 256 MB buffer explained that spread better than the loop did (r = -0.51
against -0.37; about 1% of capacity per 1% of read time; a third, steadier run: neither).
So every round also times MEMORY_READS random reads in a buffer past any last-level cache
(`MemoryReads`), and each trial records their median as well (`memory_ms_since`,
`host_memory_ms`).
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from model_server.pauses import PauseProbe

PROCESS = "host"
PERIOD_S = 0.25
SLOW_RATIO = 1.4
BASELINE_ROUNDS = 240  # the last minute
HISTORY_ROUNDS = 2400  # the last ten minutes: a trial's search and more
MIN_ROUNDS = 8  # before this many, no baseline
LOOP_ITERATIONS = 20_000  # ~1 ms of CPU on that machine: 0.4% of a core
MEMORY_MB = 64  # past the last-level cache a server CPU's core shares (8-32 MB)
MEMORY_READS = 20_000  # ~0.5 ms of CPU on that machine: 0.2% of a core


def loop_ms(iterations: int = LOOP_ITERATIONS) -> float:
    """Thread CPU milliseconds of a chain of dependent integer operations."""
    started = time.thread_time()
    x = 0
    for i in range(iterations):
        x = (x * 31 + i) & 0xFFFFFFFF
    return (time.thread_time() - started) * 1000.0


class MemoryReads:
    """Thread CPU milliseconds of MEMORY_READS reads at fixed random places in a buffer of
    MEMORY_MB: most miss every cache, so they time the machine's memory as the server's own
    reads meet it. The buffer is written once, so its pages are real (an untouched one reads
    the kernel's shared zero page, from cache)."""

    def __init__(self, mb: int = MEMORY_MB, reads: int = MEMORY_READS, seed: int = 0) -> None:
        self._buffer = np.ones(mb * 2**20 // 8)
        self._where = np.random.default_rng(seed).integers(0, self._buffer.size, reads)

    def __call__(self) -> float:
        started = time.thread_time()
        self._buffer[self._where].sum()
        return (time.thread_time() - started) * 1000.0


class SlowSpells:
    """Decides, round by round, whether the machine is in a slow spell. The baseline follows
    a lasting change: once over four fifths of the last minute's rounds are slow, that speed
    is the machine's, not a spell."""

    def __init__(self, ratio: float = SLOW_RATIO, rounds: int = BASELINE_ROUNDS) -> None:
        self.ratio = ratio
        self._rounds: deque[float] = deque(maxlen=rounds)
        self._slow_in_a_row = 0

    def baseline(self) -> float | None:
        """The 20th percentile of the rounds kept; None until there are MIN_ROUNDS."""
        if len(self._rounds) < MIN_ROUNDS:
            return None
        ordered = sorted(self._rounds)
        return ordered[len(ordered) // 5]

    def add(self, ms: float) -> int:
        """How many rounds of a spell this one confirms: 2 for the second slow round in a row
        (the first is counted with it), 1 for each slow round after, else 0."""
        base = self.baseline()
        slow = base is not None and ms >= self.ratio * base
        self._slow_in_a_row = self._slow_in_a_row + 1 if slow else 0
        self._rounds.append(ms)
        if self._slow_in_a_row < 2:
            return 0
        return 2 if self._slow_in_a_row == 2 else 1


class HostWatch:
    """Context manager: the watch runs on a daemon thread until exit."""

    def __init__(
        self,
        probe: PauseProbe,
        period_s: float = PERIOD_S,
        measure: Callable[[], float] = loop_ms,
        memory: Callable[[], Callable[[], float]] = MemoryReads,
    ) -> None:
        """`measure` times the loop; `memory` makes the memory probe, in the watch's thread
        (its buffer is the watch's, freed with it)."""
        self.probe = probe
        self.period_s = period_s
        self.measure = measure
        self.memory = memory
        self.spells = SlowSpells()
        self._history: deque[tuple[float, float, float | None]] = deque(maxlen=HISTORY_ROUNDS)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="host-watch", daemon=True)

    def __enter__(self) -> HostWatch:
        global _active
        if self.probe.path is not None:
            self._thread.start()
            _active = self
        return self

    def __exit__(self, *exc: object) -> None:
        global _active
        if _active is self:
            _active = None
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)

    def median_since(self, start: float, memory: bool = False) -> float | None:
        """The median round since `start` (monotonic seconds), of the loop or of the memory
        reads; None before MIN_ROUNDS (always, for memory, when its probe could not be made)."""
        column = 2 if memory else 1
        with self._lock:
            recent = [e[column] for e in self._history if e[0] >= start and e[column] is not None]
        return statistics.median(recent) if len(recent) >= MIN_ROUNDS else None

    def _run(self) -> None:
        try:
            reads: Callable[[], float] | None = self.memory()
        except MemoryError:  # no room for the buffer: the slow spells are still worth watching
            reads = None
        while not self._stop.wait(self.period_s):
            ms = self.measure()
            memory_ms = reads() if reads is not None else None
            now = time.monotonic()
            with self._lock:
                self._history.append((now, ms, memory_ms))
            rounds = self.spells.add(ms)
            if rounds:
                self.probe.write(now, rounds * self.period_s * 1000.0, "slow_host")


_active: HostWatch | None = None  # the run's watch (one per tuner process), while it runs


def loop_ms_since(start: float) -> float | None:
    """The machine's speed since `start`: the running watch's median loop time in ms, or None
    with no watch running or too few rounds yet."""
    watch = _active
    return watch.median_since(start) if watch is not None else None


def memory_ms_since(start: float) -> float | None:
    """The same for the memory reads (MemoryReads)."""
    watch = _active
    return watch.median_since(start, memory=True) if watch is not None else None

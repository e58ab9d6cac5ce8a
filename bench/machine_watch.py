"""What the machine did beside a benchmark: a capacity that moves between runs is only
explained once what else ran, and how fast the machine was, are on record with it.

`MachineWatch` samples every second, from a thread of the bench's own process:

- the CPU of every process *outside* the bench's process tree (other sessions, kernel
  threads such as a memory-reclaim daemon), by name;
- the kernel's steal time (a virtual machine's CPU taken by its host);
- a speed probe: the *thread* CPU time a fixed piece of Python work takes. Waiting for a core
  (or for the GIL) does not count in it, so it moves only when the machine itself is slower.

`summary(start, end)` gives one window's figures (e.g. a trial's, from its start and end
times), for the bench's JSON beside the capacities measured in that window.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from tuner.capacity.host_speed import SLOW_RATIO, loop_ms

if TYPE_CHECKING:
    import optuna

SPEED_LOOP = 300_000  # ~15 ms of CPU on the 2-core machine of bench/RESULTS.md


def speed_probe_ms() -> float:
    """Thread CPU milliseconds of a fixed loop: the machine's speed, apart from contention.
    The tuner's own watch times the same loop, shorter (tuner/capacity/host_speed.py), and
    the same SLOW_RATIO tells a slow sample."""
    return loop_ms(SPEED_LOOP)


def _steal_s() -> float:
    """The host's steal time so far (0 where the kernel does not report it)."""
    return getattr(psutil.cpu_times(), "steal", 0.0)


class MachineWatch:
    """Context manager: samples until exit, one JSON line per second in `path`."""

    def __init__(self, path: Path, interval_s: float = 1.0) -> None:
        self.path = path
        self.interval_s = interval_s
        self.samples: list[dict] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="machine-watch", daemon=True)
        self._cpu: dict[tuple[int, float], float] = {}

    def __enter__(self) -> MachineWatch:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _ours(self) -> set[int]:
        me = psutil.Process()
        return {me.pid, *(p.pid for p in me.children(recursive=True))}

    def _others(self, ours: set[int]) -> dict[str, float]:
        """CPU seconds per process name since the last sample, for processes not ours."""
        seen: dict[tuple[int, float], float] = {}
        others: Counter[str] = Counter()
        for p in psutil.process_iter(["pid", "name", "cpu_times", "create_time"]):
            info = p.info
            if info["cpu_times"] is None or info["pid"] in ours:
                continue
            key = (info["pid"], info["create_time"])
            cpu = info["cpu_times"].user + info["cpu_times"].system
            seen[key] = cpu
            if key in self._cpu:
                others[info["name"] or "?"] += max(0.0, cpu - self._cpu[key])
        self._cpu = seen
        return {name: round(s, 3) for name, s in others.items() if s >= 0.01}

    def _run(self) -> None:
        steal = _steal_s()
        self._others(self._ours())  # the baseline: only what others use from now on counts
        with self.path.open("a") as out:
            while not self._stop.wait(self.interval_s):
                now_steal = _steal_s()
                sample = {
                    "t": round(time.time(), 3),
                    "speed_ms": round(speed_probe_ms(), 2),
                    "steal_s": round(now_steal - steal, 3),
                    "others_cpu_s": self._others(self._ours()),
                }
                steal = now_steal
                self.samples.append(sample)
                out.write(json.dumps(sample) + "\n")
                out.flush()

    def summary(self, start: float, end: float) -> dict | None:
        """One window's figures: the speed probe's median, how many of its samples were slow
        (over SLOW_RATIO x the whole run's median: a median alone hides a spell of the host
        shorter than the window), steal and other processes' CPU (as a share of one core; the
        three biggest by name), or None without samples."""
        window = [s for s in self.samples if start <= s["t"] <= end]
        if not window:
            return None
        seconds = max(end - start, 1e-9)
        others: Counter[str] = Counter()
        for s in window:
            others.update(s["others_cpu_s"])
        usual = statistics.median(s["speed_ms"] for s in self.samples)
        return {
            "samples": len(window),
            "speed_ms_median": round(statistics.median(s["speed_ms"] for s in window), 2),
            "slow_samples": sum(s["speed_ms"] >= SLOW_RATIO * usual for s in window),
            "steal_s": round(sum(s["steal_s"] for s in window), 3),
            "others_cpu_percent": round(100.0 * sum(others.values()) / seconds, 1),
            "others_top": {k: round(100.0 * v / seconds, 1) for k, v in others.most_common(3)},
        }


def machine_by_phase(watch: MachineWatch, study: optuna.Study) -> dict:
    """The machine beside each trial and the confirmation (bench/machine_watch.py): a
    reference that reads differently in its trial and its confirmation is first checked
    against what else ran and how fast the machine was meanwhile."""
    phases: dict = {}
    last_end = None
    for trial in study.trials:
        if trial.datetime_start is None or trial.datetime_complete is None:
            continue
        start, end = trial.datetime_start.timestamp(), trial.datetime_complete.timestamp()
        phases[f"trial {trial.number}"] = watch.summary(start, end)
        last_end = end if last_end is None else max(last_end, end)
    if last_end is not None and watch.samples:
        phases["confirmation"] = watch.summary(last_end, watch.samples[-1]["t"])
    return phases

"""The bench's own pauses, placed in the load steps' windows.

Every process of the bench (the service, the embedded model server, Locust, the tuner)
appends its pauses (collections, event-loop lag) to one file named by TUNER_PAUSE_LOG
(model_server/pauses.py), and so does the tuner's watch of the machine's own slow spells, as
the "host" (host_speed.py). A step's window that one of them hit is visible in its curve
(`pause_max_ms`, the longest pause of each process overlapping the window; `stall_max_ms`, the
longest of those that stop a process whatever its load) and a failed one is measured again
instead of counted when a stall could have failed it (tuner/capacity/step_runner.py): the
stall belongs to the stand-in, the bench or the machine, not to the configuration measured.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from model_server import pauses
from tuner.capacity import host_speed
from tuner.interrupts import ctrl_c_kept

# Pauses in these processes delay requests; the tuner's only delay its bookkeeping. The
# host's slow spells (tuner/capacity/host_speed.py) slow every one of them.
REQUEST_PATH = ("service", "model_server", "load_generator", host_speed.PROCESS)


@dataclass(frozen=True)
class Pause:
    process: str
    end: float  # time.monotonic() at its end
    ms: float
    kind: str


class PauseLog:
    """The pause file, read incrementally (complete lines only)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.pauses: list[Pause] = []
        self._offset = 0
        self._partial = b""

    def read(self) -> list[Pause]:
        if self.path is None or not self.path.exists():
            return self.pauses
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            try:
                d = json.loads(raw)
                self.pauses.append(Pause(str(d["p"]), float(d["t"]), float(d["ms"]), d["kind"]))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line says nothing about a window
        return self.pauses

    def overlapping(self, start: float, end: float) -> list[Pause]:
        """The pauses overlapping [start, end] (monotonic seconds)."""
        return [p for p in self.read() if p.end >= start and p.end - p.ms / 1000.0 <= end]

    def longest(self, start: float, end: float, *, stalls_only: bool = False) -> dict[str, float]:
        """Per process, the longest pause overlapping [start, end]; with `stalls_only`, only
        those that stop a process whatever its load (is_stall)."""
        window = self.overlapping(start, end)
        return longest_by_process(p for p in window if not stalls_only or is_stall(p))


def longest_by_process(pauses: Iterable[Pause]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p in pauses:
        out[p.process] = max(out.get(p.process, 0.0), p.ms)
    return out


def is_stall(pause: Pause) -> bool:
    """A collection or a slow spell of the host: it stops the process whatever the traffic. An
    event loop's lag is not one: a loop that has more to do than its core allows lags by that
    much (the service's reached 56-132 ms in overloaded windows with no collection), so a lag
    is as much the load's effect as a cause of the latency."""
    return pause.kind.startswith("gc") or pause.process == host_speed.PROCESS


def hit_by(
    longest: dict[str, float], limit_ms: float, excess_ms: float | None = None
) -> str | None:
    """The pause that could have failed the window, in words; None when none could.

    A process's pause of P ms delays the requests caught in it by at most about P ms, so it
    can explain a failure only on latency (`excess_ms`: how far the SLO percentile went over
    the SLO; None when the step failed on anything else) and only one within P of the SLO. A
    slow spell of the host slows every process for its whole length, so it explains any."""

    def explains(process: str, ms: float) -> bool:
        if process not in REQUEST_PATH or ms < limit_ms:
            return False
        return process == host_speed.PROCESS or (excess_ms is not None and ms >= excess_ms)

    worst = max(((ms, p) for p, ms in longest.items() if explains(p, ms)), default=None)
    if worst is None:
        return None
    ms, process = worst
    if process == host_speed.PROCESS:
        return (
            f"the machine itself ran slow for {ms:.0f} ms of the window (a fixed loop took "
            f"over {host_speed.SLOW_RATIO}x its usual CPU time)"
        )
    return f"a {ms:.0f} ms pause of the {process.replace('_', ' ')} hit the window"


@contextlib.contextmanager
def pause_log(path: Path) -> Iterator[PauseLog]:
    """Every process started inside the block (they inherit the environment) and this one
    report their pauses to `path`; the variable is restored after. The tuner's own start-up
    objects are frozen meanwhile: its full collections took up to 0.7 s, and one between
    fixing a step's start and writing it would make Locust send the overdue arrivals at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    previous = os.environ.get(pauses.ENV_LOG)
    os.environ[pauses.ENV_LOG] = str(path)
    gc.freeze()
    probe = pauses.watch("tuner")
    try:
        with (
            ctrl_c_kept(),  # the probe is a gc callback, where a Ctrl-C would be dropped
            host_speed.HostWatch(pauses.PauseProbe(host_speed.PROCESS, str(path))),
        ):
            yield PauseLog(path)
    finally:
        with contextlib.suppress(ValueError):
            gc.callbacks.remove(probe.on_gc)
        gc.unfreeze()
        if previous is None:
            os.environ.pop(pauses.ENV_LOG, None)
        else:
            os.environ[pauses.ENV_LOG] = previous

"""The control file through which the tuner tells running Locust processes the next step.

Why a file: it works alike for one Locust process and for the workers of `--processes N`
(no master/worker message plumbing, no stdin), survives any worker start order, and a
step switch costs a poll (CONTROL_POLL_S) instead of a Locust restart (1-2 s). The tuner
replaces the file atomically (write + rename), so a reader never sees half a step.

A step names an absolute start time on the machine's monotonic clock (CLOCK_MONOTONIC is
system-wide on Linux and macOS, so every process agrees on it): all processes switch rate
at the same instant and lay their interval grids on the same origin. The start lies
CONTROL_LEAD_S ahead, longer than a poll, so every process has read it in time.

Workers on other hosts (`load.workers`) share neither the file nor the clock: the master
Locust process reads the file and forwards each step as a Locust message carrying the time
left until its start (`lead_s`), which the worker adds to its own monotonic clock
(step_message / step_from_message); the network's delay (well under a millisecond on a
LAN) is the only offset between the hosts' interval grids.

Pure: imported by the tuner and by the Locust processes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CONTROL_POLL_S = 0.01
CONTROL_LEAD_S = 0.1  # a poll, plus drawing the step's arrivals (arrivals.step_arrivals)


@dataclass(frozen=True)
class Step:
    number: int
    rate_rps: float  # total over all processes
    start_at: float  # time.monotonic() at which the step begins
    window_start_s: float  # the measurement window, in seconds from the step's start
    window_s: float

    def to_json(self) -> str:
        return json.dumps(
            {
                "step": self.number,
                "rate_rps": self.rate_rps,
                "start_at": self.start_at,
                "window_start_s": self.window_start_s,
                "window_s": self.window_s,
            }
        )


def write_step(path: Path, step: Step) -> None:
    """Replace the control file atomically."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(step.to_json())
    os.replace(tmp, path)


class StepReader:
    """Polls the control file; `poll()` returns a step once, when a new one appears."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._seen: tuple[int, int] | None = None
        self._last = -1

    def poll(self) -> Step | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_ino)
        if key == self._seen:
            return None
        self._seen = key
        try:
            with open(self.path) as f:
                data = json.load(f)
        except (OSError, ValueError):
            self._seen = None  # try again on the next poll
            return None
        number = int(data["step"])
        if number <= self._last:
            return None
        self._last = number
        return Step(
            number,
            float(data["rate_rps"]),
            float(data["start_at"]),
            float(data["window_start_s"]),
            float(data["window_s"]),
        )


def step_message(step: Step, now: float) -> dict:
    """`step` for a worker on another host, at monotonic time `now` on this one."""
    return {
        "step": step.number,
        "rate_rps": step.rate_rps,
        "lead_s": step.start_at - now,
        "window_start_s": step.window_start_s,
        "window_s": step.window_s,
    }


def step_from_message(data: dict, now: float) -> Step:
    """The step of a message received at monotonic time `now` on this host."""
    return Step(
        int(data["step"]),
        float(data["rate_rps"]),
        now + float(data["lead_s"]),
        float(data["window_start_s"]),
        float(data["window_s"]),
    )


class StepInbox:
    """Steps received as messages, polled like StepReader: `poll()` returns each new one once."""

    def __init__(self) -> None:
        self._pending: Step | None = None
        self._last = -1

    def put(self, step: Step) -> None:
        if step.number > self._last:
            self._last = step.number
            self._pending = step

    def poll(self) -> Step | None:
        step, self._pending = self._pending, None
        return step

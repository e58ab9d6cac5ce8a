"""`server.cpus`: the CPU budget of the model server, as a production pod's CPU limit is.

The best batching file depends on how many cores the server has (num_batch_threads, the
intra-op pool), so a study can run the server on the budget it will have in production:
a CPU list ("0", "0-1", "0,2-3") pins it to those CPUs, a count (2) gives it that many (the
first ones this process may use, or `nano_cpus` for a container).

- embedded / binary: the process's CPU affinity, set in the child before it executes (every
  thread it starts inherits it), and TF Serving's `--tensorflow_intra_op_parallelism` and
  `--tensorflow_inter_op_parallelism` sized to the budget unless the search space or
  server.extra_flags set them.
- docker: `cpuset_cpus` for a list, `nano_cpus` for a count.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from tuner.servers.base import ServerConfigError

THREAD_FLAGS = ("tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism")


@dataclass(frozen=True)
class CpuBudget:
    cpus: tuple[int, ...]  # the CPUs a local process is pinned to
    pinned: bool  # a list was given (docker: cpuset_cpus), not a count (docker: nano_cpus)

    @property
    def count(self) -> int:
        return len(self.cpus)

    def describe(self) -> str:
        """What is recorded per trial: "0-1" or "2 CPUs"."""
        return format_list(self.cpus) if self.pinned else f"{self.count} CPUs"

    def docker_kwargs(self) -> dict[str, object]:
        if self.pinned:
            return {"cpuset_cpus": ",".join(str(c) for c in self.cpus)}
        return {"nano_cpus": self.count * 1_000_000_000}

    def thread_flags(
        self, server_flags: Mapping[str, str], extra_flags: Mapping[str, str]
    ) -> dict[str, str]:
        """The thread flags the user did not set, sized to the budget."""
        return {
            flag: str(self.count)
            for flag in THREAD_FLAGS
            if flag not in server_flags and flag not in extra_flags
        }


def available_cpus() -> tuple[int, ...]:
    if hasattr(os, "sched_getaffinity"):
        return tuple(sorted(os.sched_getaffinity(0)))
    return tuple(range(os.cpu_count() or 1))


def parse_cpus(value: str | int | None, available: tuple[int, ...] | None = None):
    """The budget, or None when unset; ServerConfigError in one sentence otherwise."""
    if value is None:
        return None
    allowed = available_cpus() if available is None else available
    shown = format_list(allowed)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ServerConfigError(
            f'server.cpus must be a CPU list such as "0-1" or a count, not {value!r}'
        )
    if isinstance(value, int):
        if not 1 <= value <= len(allowed):
            raise ServerConfigError(
                f"server.cpus = {value} must be a count from 1 to {len(allowed)} (the CPUs "
                f"this machine lets the tuner use: {shown})"
            )
        return CpuBudget(allowed[:value], pinned=False)
    text = value.strip()
    if not text:
        raise ServerConfigError(
            f'server.cpus is empty; give a CPU list such as "0" or "0-1" (this machine: {shown}), '
            "a count, or leave it out"
        )
    cpus = _parse_list(text)
    unknown = sorted(set(cpus) - set(allowed))
    if unknown:
        raise ServerConfigError(
            f"server.cpus = {value!r} names CPU(s) {format_list(tuple(unknown))} this machine "
            f"does not let the tuner use; choose among {shown}"
        )
    return CpuBudget(cpus, pinned=True)


def _parse_list(text: str) -> tuple[int, ...]:
    cpus: set[int] = set()
    for part in text.split(","):
        low, dash, high = part.strip().partition("-")
        try:
            first, last = int(low), int(high if dash else low)
        except ValueError:
            raise ServerConfigError(
                f'server.cpus = {text!r} is not a CPU list; write it as "0", "0-1" or "0,2-3"'
            ) from None
        if first < 0 or last < first:
            raise ServerConfigError(
                f"server.cpus = {text!r} has the range {part.strip()!r}, which holds no CPU"
            )
        cpus.update(range(first, last + 1))
    return tuple(sorted(cpus))


def format_list(cpus: tuple[int, ...]) -> str:
    """(0, 1, 2, 5) -> "0-2,5"."""
    runs: list[list[int]] = []
    for cpu in sorted(cpus):
        if runs and runs[-1][1] == cpu - 1:
            runs[-1][1] = cpu
        else:
            runs.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in runs)

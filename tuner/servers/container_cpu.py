"""A container's CPU from the engine's stats API, for backends whose processes have no host pid.

The process backends hand their pids to the load runner, which reads /proc; a container's
processes may live in a VM or on another host (DOCKER_HOST=tcp://...), so the docker backend
reads the cgroup's cumulative CPU time (`cpu_stats.cpu_usage.total_usage`, nanoseconds) from
`GET /containers/{id}/stats` before and after the load and divides by the wall time between:
100 means one core busy, the same scale as `cpu_model_server_percent` elsewhere.
"""

from __future__ import annotations

import logging
import time

log = logging.getLogger(__name__)


def cpu_seconds(container) -> float | None:
    """The container's CPU time so far, or None when the engine does not say."""
    try:
        stats = container.stats(stream=False, one_shot=True)
        return stats["cpu_stats"]["cpu_usage"]["total_usage"] / 1e9
    except Exception as exc:  # the measurement goes on without this figure
        log.warning("event=container_stats_unavailable error=%r", str(exc))
        return None


class ContainerCpu:
    """Started when created; `percent()` is the mean CPU since then (100 = one core)."""

    def __init__(self, container) -> None:
        self.container = container
        self._start_wall = time.monotonic()
        self._start_cpu = cpu_seconds(container)

    def percent(self) -> float | None:
        if self._start_cpu is None:
            return None
        now_cpu = cpu_seconds(self.container)
        elapsed = time.monotonic() - self._start_wall
        if now_cpu is None or elapsed <= 0 or now_cpu < self._start_cpu:
            return None
        return 100.0 * (now_cpu - self._start_cpu) / elapsed

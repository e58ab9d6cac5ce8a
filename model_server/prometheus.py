"""A tiny Prometheus registry: counters and histograms in text exposition format 0.0.4.

Instead of `prometheus_client`, because TF Serving's names must come out exactly as TF Serving
writes them (`:tensorflow:serving:...`, `request_count` without `_total`), and because batch
threads record into it: one lock guards every metric of a registry, so `render()` is a
consistent snapshot and a recording is a bisect and two adds.
"""

from __future__ import annotations

import bisect
import threading
from _thread import LockType
from collections.abc import Iterable, Sequence

__all__ = ["Counter", "Histogram", "Registry"]


def _format_value(value: float) -> str:
    if value == float("inf"):
        return "+Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = ""

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str], lock: LockType
    ) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = lock

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)

    def _header(self) -> list[str]:
        help_text = self.help.replace("\\", "\\\\").replace("\n", "\\n")
        return [f"# HELP {self.name} {help_text}", f"# TYPE {self.name} {self.kind}"]


class _CounterChild:
    __slots__ = ("_lock", "value")

    def __init__(self, lock: LockType) -> None:
        self._lock = lock
        self.value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self.value += amount


class Counter(_Metric):
    kind = "counter"

    def __init__(
        self, name: str, help_text: str, labelnames: Sequence[str], lock: LockType
    ) -> None:
        super().__init__(name, help_text, labelnames, lock)
        self._children: dict[tuple[str, ...], _CounterChild] = {}

    def labels(self, **labels: str) -> _CounterChild:
        key = self._key(labels)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = _CounterChild(self._lock)
        return child

    def render(self) -> list[str]:
        lines = self._header()
        for key, child in sorted(self._children.items()):
            lines.append(
                f"{self.name}{_labels_text(self.labelnames, key)} {_format_value(child.value)}"
            )
        return lines


class _HistogramChild:
    __slots__ = ("_bounds", "_lock", "count", "counts", "sum")

    def __init__(self, bounds: tuple[float, ...], lock: LockType) -> None:
        self._bounds = bounds
        self._lock = lock
        self.counts = [0] * (len(bounds) + 1)  # last slot: above the largest bound (+Inf)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        index = bisect.bisect_left(self._bounds, value)
        with self._lock:
            self.counts[index] += 1
            self.sum += value
            self.count += 1

    def observe_many(self, values: Iterable[float]) -> None:
        """One lock acquisition for a whole batch's worth of observations."""
        bounds = self._bounds
        indices = [(bisect.bisect_left(bounds, v), v) for v in values]
        with self._lock:
            for index, value in indices:
                self.counts[index] += 1
                self.sum += value
            self.count += len(indices)


class Histogram(_Metric):
    kind = "histogram"

    def __init__(
        self,
        name: str,
        help_text: str,
        labelnames: Sequence[str],
        lock: LockType,
        buckets: Sequence[float],
    ) -> None:
        super().__init__(name, help_text, labelnames, lock)
        bounds = tuple(float(b) for b in buckets)
        if list(bounds) != sorted(set(bounds)) or not bounds:
            raise ValueError(f"{name}: buckets must be non-empty and strictly increasing")
        if bounds[-1] == float("inf"):
            bounds = bounds[:-1]
        self.buckets = bounds
        self._children: dict[tuple[str, ...], _HistogramChild] = {}

    def labels(self, **labels: str) -> _HistogramChild:
        key = self._key(labels)
        with self._lock:
            child = self._children.get(key)
            if child is None:
                child = self._children[key] = _HistogramChild(self.buckets, self._lock)
        return child

    def render(self) -> list[str]:
        lines = self._header()
        for key, child in sorted(self._children.items()):
            cumulative = 0
            for bound, count in zip((*self.buckets, float("inf")), child.counts, strict=True):
                cumulative += count
                le = f'le="{_format_value(bound)}"'
                lines.append(
                    f"{self.name}_bucket{_labels_text(self.labelnames, key, le)} {cumulative}"
                )
            labels = _labels_text(self.labelnames, key)
            lines.append(f"{self.name}_sum{labels} {_format_value(child.sum)}")
            lines.append(f"{self.name}_count{labels} {child.count}")
        return lines


class Registry:
    """Thread-safe set of metrics; `render()` takes a consistent snapshot under the lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        with self._lock:
            if metric.name in self._metrics:
                raise ValueError(f"metric {metric.name} is already registered")
            self._metrics[metric.name] = metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(name, help_text, labelnames, self._lock)
        self._add(metric)
        return metric

    def histogram(
        self, name: str, help_text: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        metric = Histogram(name, help_text, labelnames, self._lock, buckets)
        self._add(metric)
        return metric

    def render(self) -> str:
        lines: list[str] = []
        with self._lock:
            for metric in self._metrics.values():
                lines.extend(metric.render())
        return "\n".join(lines) + "\n" if lines else ""

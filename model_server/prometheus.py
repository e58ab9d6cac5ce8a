"""TF's monitoring registry and TF Serving's Prometheus page, as 2.19 writes them.

The page follows tensorflow_serving/util/prometheus_exporter.cc rule for rule, because
anything that scrapes TF Serving (the tuner included) must read this server's page alike:
- metrics ordered by their TF name ("/tensorflow/serving/..."), every character outside
  [a-zA-Z0-9_] replaced by ':' (GetPrometheusMetricName);
- only a `# TYPE` line per metric, no `# HELP`; a registered metric without cells still
  gets its TYPE line;
- counters as `NAME{labels} N` (`NAME{} N` without labels), integer values;
- histograms as one `_bucket{labels,le="LIMIT"}` line per bucket of TF's Histogram, the
  last one `le="+Inf"`, then `_sum{labels}` and `_count{labels}`; limits and sums printed
  with absl::StrCat's six significant digits (so large sums are rounded, as TF's are);
- label values escape only backslash and double quote (SanitizeLabelValue).

TF's Histogram (tensorflow/core/lib/histogram/histogram.cc) puts a value in the first
bucket whose limit is *greater* than it (upper_bound), so `le="2"` counts values below 2;
monitoring::Buckets::Exponential(scale, growth, n) gives limits scale*growth^i, i < n, plus
DBL_MAX. Both are reproduced, so bucket counts match TF's exactly.

One lock guards a registry, so `render()` is a consistent snapshot; batch threads record.
"""

from __future__ import annotations

import bisect
import sys
import threading
from _thread import LockType
from collections.abc import Iterable, Sequence

__all__ = ["Counter", "Histogram", "Registry", "exponential_buckets", "prometheus_name"]

DBL_MAX = sys.float_info.max


def exponential_buckets(scale: float, growth: float, count: int) -> tuple[float, ...]:
    """monitoring::Buckets::Exponential's limits (DBL_MAX is appended by the histogram)."""
    limits = []
    bound = scale
    for _ in range(count):
        limits.append(bound)
        bound *= growth
    return tuple(limits)


def prometheus_name(tf_name: str) -> str:
    """GetPrometheusMetricName: every character outside [a-zA-Z0-9_] becomes ':'."""
    name = "".join(c if c.isascii() and (c.isalnum() or c == "_") else ":" for c in tf_name)
    return "_" + name if name[:1].isdigit() else name


def _six_digits(value: float) -> str:
    """absl::StrCat(double): printf %g with six significant digits."""
    return f"{value:.6g}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _labels(names: Sequence[str], values: Sequence[str]) -> list[str]:
    return [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]


class _Metric:
    kind = ""

    def __init__(self, tf_name: str, labelnames: Sequence[str], lock: LockType) -> None:
        self.tf_name = tf_name
        self.name = prometheus_name(tf_name)
        self.labelnames = tuple(labelnames)
        self._lock = lock

    def _key(self, labels: dict[str, str]) -> tuple[str, ...]:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[n]) for n in self.labelnames)


class _CounterCell:
    __slots__ = ("_lock", "value")

    def __init__(self, lock: LockType) -> None:
        self._lock = lock
        self.value = 0

    def inc(self, amount: int = 1) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        with self._lock:
            self.value += amount


class Counter(_Metric):
    kind = "counter"

    def __init__(self, tf_name: str, labelnames: Sequence[str], lock: LockType) -> None:
        super().__init__(tf_name, labelnames, lock)
        self._cells: dict[tuple[str, ...], _CounterCell] = {}

    def labels(self, **labels: str) -> _CounterCell:
        key = self._key(labels)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = _CounterCell(self._lock)
        return cell

    def render(self) -> list[str]:
        lines = [f"# TYPE {self.name} counter"]
        for key, cell in sorted(self._cells.items()):
            lines.append(f"{self.name}{{{','.join(_labels(self.labelnames, key))}}} {cell.value}")
        return lines


class _HistogramCell:
    __slots__ = ("_limits", "_lock", "counts", "sum")

    def __init__(self, limits: tuple[float, ...], lock: LockType) -> None:
        self._limits = limits
        self._lock = lock
        self.counts = [0] * len(limits)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = min(bisect.bisect_right(self._limits, value), len(self._limits) - 1)
        with self._lock:
            self.counts[index] += 1
            self.sum += value

    def observe_many(self, values: Iterable[float]) -> None:
        """One lock acquisition for a whole batch's worth of observations."""
        limits = self._limits
        last = len(limits) - 1
        indices = [(min(bisect.bisect_right(limits, v), last), v) for v in values]
        with self._lock:
            for index, value in indices:
                self.counts[index] += 1
                self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)


class Histogram(_Metric):
    """A TF monitoring::Sampler: explicit bucket limits, DBL_MAX appended as the last."""

    kind = "histogram"

    def __init__(
        self, tf_name: str, labelnames: Sequence[str], lock: LockType, buckets: Sequence[float]
    ) -> None:
        super().__init__(tf_name, labelnames, lock)
        limits = tuple(float(b) for b in buckets)
        if not limits or list(limits) != sorted(set(limits)):
            raise ValueError(f"{tf_name}: buckets must be non-empty and strictly increasing")
        if limits[-1] != DBL_MAX:
            limits = (*limits, DBL_MAX)
        self.limits = limits
        self._cells: dict[tuple[str, ...], _HistogramCell] = {}

    def labels(self, **labels: str) -> _HistogramCell:
        key = self._key(labels)
        with self._lock:
            cell = self._cells.get(key)
            if cell is None:
                cell = self._cells[key] = _HistogramCell(self.limits, self._lock)
        return cell

    def render(self) -> list[str]:
        lines = [f"# TYPE {self.name} histogram"]
        last = len(self.limits) - 1
        for key, cell in sorted(self._cells.items()):
            labels = _labels(self.labelnames, key)
            prefix = f"{self.name}_bucket{{{','.join(labels)}{',' if labels else ''}"
            cumulative = 0
            for i, count in enumerate(cell.counts):
                cumulative += count
                le = _six_digits(self.limits[i]) if i < last else "+Inf"
                lines.append(f'{prefix}le="{le}"}} {cumulative}')
            joined = ",".join(labels)
            lines.append(f"{self.name}_sum{{{joined}}} {_six_digits(cell.sum)}")
            lines.append(f"{self.name}_count{{{joined}}} {cumulative}")
        return lines


class Registry:
    """TF's CollectionRegistry for one process: metrics appear once registered."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._metrics: dict[str, _Metric] = {}

    def _add(self, metric: _Metric) -> None:
        with self._lock:
            if metric.tf_name in self._metrics:
                raise ValueError(f"metric {metric.tf_name} is already registered")
            self._metrics[metric.tf_name] = metric

    def counter(self, tf_name: str, labelnames: Sequence[str] = ()) -> Counter:
        metric = Counter(tf_name, labelnames, self._lock)
        self._add(metric)
        return metric

    def histogram(
        self, tf_name: str, labelnames: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        metric = Histogram(tf_name, labelnames, self._lock, buckets)
        self._add(metric)
        return metric

    def render(self) -> str:
        """GeneratePage: the lines joined by newlines, plus a final newline."""
        lines: list[str] = []
        with self._lock:
            for _name, metric in sorted(self._metrics.items()):
                lines.extend(metric.render())  # type: ignore[attr-defined]
        return "\n".join(lines) + "\n"

"""Reading a model server's Prometheus metrics (TF Serving's names, on its REST port).

The tuner scrapes before and after the measurement window; the deltas give the mean
executed batch size (processed_batch_size `_sum`/`_count`, padding included) and the
number of requests rejected because the batch queue was full (request_count with
status UNAVAILABLE), counted apart from "server down" errors.
"""

from __future__ import annotations

import http.client
import math
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field

PREFIX = ":tensorflow:serving:"
BATCHING_PREFIX = f"{PREFIX}batching_session:"
REQUEST_COUNT = f"{PREFIX}request_count"
HISTOGRAMS = {
    "processed_batch_size": f"{BATCHING_PREFIX}processed_batch_size",
    "input_batch_size": f"{BATCHING_PREFIX}input_batch_size",
    "padding_size": f"{BATCHING_PREFIX}padding_size",
    "queuing_latency": f"{BATCHING_PREFIX}queuing_latency",
    "request_latency": f"{PREFIX}request_latency",
}
QUEUE_FULL_STATUS = "UNAVAILABLE"

_SAMPLE = re.compile(
    r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    r"(?:\{(?P<labels>.*)\})?"
    r"\s+(?P<value>\S+)(?:\s+-?\d+)?\s*$"
)
_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?')


class MetricsError(RuntimeError):
    """The metrics endpoint could not be read."""


@dataclass(frozen=True)
class Sample:
    name: str
    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class ServerMetricsSnapshot:
    """The counters the tuner uses, summed over label sets of the chosen model."""

    histogram_sums: dict[str, float] = field(default_factory=dict)  # short name -> _sum
    histogram_counts: dict[str, float] = field(default_factory=dict)  # short name -> _count
    request_count_by_status: dict[str, float] = field(default_factory=dict)

    @property
    def has_batching(self) -> bool:
        return "processed_batch_size" in self.histogram_counts


def _unescape(value: str) -> str:
    return value.replace("\\n", "\n").replace('\\"', '"').replace("\\\\", "\\")


def parse_samples(text: str) -> list[Sample]:
    """Samples of the Prometheus text exposition format (comments and bad lines skipped)."""
    samples = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        labels = {k: _unescape(v) for k, v in _LABEL.findall(match["labels"] or "")}
        samples.append(Sample(match["name"], labels, value))
    return samples


def parse(text: str, model_name: str | None = None) -> ServerMetricsSnapshot:
    """The snapshot of one scrape; `model_name` keeps only that model's series."""
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    by_status: dict[str, float] = {}
    suffixes = {f"{full}_sum": (short, sums) for short, full in HISTOGRAMS.items()}
    suffixes |= {f"{full}_count": (short, counts) for short, full in HISTOGRAMS.items()}
    for sample in parse_samples(text):
        if model_name is not None and sample.labels.get("model_name", model_name) != model_name:
            continue
        if math.isnan(sample.value):
            continue
        if sample.name == REQUEST_COUNT:
            status = sample.labels.get("status", "")
            by_status[status] = by_status.get(status, 0.0) + sample.value
        elif sample.name in suffixes:
            short, target = suffixes[sample.name]
            target[short] = target.get(short, 0.0) + sample.value
    return ServerMetricsSnapshot(sums, counts, by_status)


def scrape(
    metrics_url: str, *, model_name: str | None = None, timeout_s: float = 5.0
) -> ServerMetricsSnapshot:
    """One scrape; MetricsError when the page cannot be read whole.

    A server killed or stopped mid-answer ends the body early, which http.client reports
    as IncompleteRead, an HTTPException and not an OSError.
    """
    try:
        with urllib.request.urlopen(metrics_url, timeout=timeout_s) as response:
            text = response.read().decode("utf-8", errors="replace")
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        raise MetricsError(f"could not read metrics from {metrics_url}: {exc}") from None
    return parse(text, model_name)


def histogram_mean(
    before: ServerMetricsSnapshot, after: ServerMetricsSnapshot, short_name: str
) -> float | None:
    """Mean of one histogram's observations between two scrapes, None without any."""
    if short_name not in after.histogram_counts:
        return None
    count = after.histogram_counts[short_name] - before.histogram_counts.get(short_name, 0.0)
    total = after.histogram_sums.get(short_name, 0.0) - before.histogram_sums.get(short_name, 0.0)
    if count <= 0:
        return None
    return total / count


def mean_batch_size(before: ServerMetricsSnapshot, after: ServerMetricsSnapshot) -> float | None:
    """Mean executed batch size (padding included) between two scrapes."""
    return histogram_mean(before, after, "processed_batch_size")


def request_count_delta(
    before: ServerMetricsSnapshot, after: ServerMetricsSnapshot, status: str
) -> int | None:
    if status not in after.request_count_by_status:
        return None
    delta = after.request_count_by_status[status] - before.request_count_by_status.get(status, 0)
    return round(delta)


def queue_full_count(before: ServerMetricsSnapshot, after: ServerMetricsSnapshot) -> int | None:
    """Requests the model server rejected with UNAVAILABLE between two scrapes.

    None when the server never reported any; 0 when it reported requests but no rejection.
    """
    if not after.request_count_by_status:
        return None
    return request_count_delta(before, after, QUEUE_FULL_STATUS) or 0

"""Turning the interval stream into samples and measurement-window figures.

Every interval line carries the raw latency of each request that completed in it, so the
window's percentiles are computed from all of its requests, exactly, rather than averaged
over intervals or read from a bucketed histogram. At the rates one Locust process can
generate (a few thousand requests per second) that is a few tens of kB per second.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from tuner.load.spec import IntervalSample
from tuner.percentile_ci import PercentileInterval, percentile_interval

SETTLE_WINDOWS = 3
SETTLE_RATIO = 1.10


def percentile(sorted_values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: the smallest recorded value with at least p% at or below it."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class IntervalData:
    """One interval of one or more Locust processes, before it becomes a sample.

    `index` counts from the start of `step`; the arrival fields stay None in closed mode.
    """

    index: int
    step: int = 0
    requests: int = 0
    failures: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    failures_by_code: Counter[str] = field(default_factory=Counter)
    target_rps: float | None = None
    arrivals: int | None = None
    skipped: int | None = None
    late: int | None = None
    in_flight_max: int | None = None

    def add(self, line: dict) -> None:
        self.requests += int(line["requests"])
        self.failures += int(line["failures"])
        self.latencies_ms.extend(float(x) for x in line["latencies_ms"])
        self.failures_by_code.update({str(k): int(v) for k, v in line["failures_by_code"].items()})
        if "arrivals" in line:
            self.target_rps = line.get("target_rps")
            self.arrivals = (self.arrivals or 0) + int(line["arrivals"])
            self.skipped = (self.skipped or 0) + int(line["skipped"])
            self.late = (self.late or 0) + int(line["late"])
            # Processes peak at different moments: the sum bounds the total from above.
            self.in_flight_max = (self.in_flight_max or 0) + int(line["in_flight_max"])

    def to_sample(
        self, interval_s: float, warmup_intervals: int, *, first_index: int = 0, t0_s: float = 0.0
    ) -> IntervalSample:
        """The sample; `first_index` and `t0_s` place the step in the whole session."""
        ordered = sorted(self.latencies_ms)
        return IntervalSample(
            index=first_index + self.index,
            t_s=round(t0_s + (self.index + 1) * interval_s, 9),
            in_warmup=self.index < warmup_intervals,
            requests=self.requests,
            failures=self.failures,
            rps=self.requests / interval_s,
            p50_ms=percentile(ordered, 50),
            p95_ms=percentile(ordered, 95),
            p99_ms=percentile(ordered, 99),
            failures_by_code=dict(self.failures_by_code),
            step=self.step,
            target_rps=self.target_rps,
            arrivals=self.arrivals,
            skipped=self.skipped,
            in_flight_max=self.in_flight_max,
            late=self.late,
            offered_rps=self.arrivals / interval_s if self.arrivals is not None else None,
        )


class IntervalMerger:
    """Merges the lines of `sources` Locust processes into complete intervals, in order.

    Lines carry (step, index): closed mode is one step 0 numbered from each process's own
    test start (the workers of `--processes` start within milliseconds of each other); an
    open-loop step starts at the same instant in every process (control.py). Lines of
    other steps than the current one are ignored; `begin(step)` moves on.
    """

    def __init__(self, sources: int, step: int = 0) -> None:
        self.sources = sources
        self.step = step
        self._pending: dict[int, tuple[IntervalData, set[int | str]]] = {}
        self._next = 0

    def begin(self, step: int) -> None:
        self.step = step
        self._pending = {}
        self._next = 0

    def add(self, line: dict) -> list[IntervalData]:
        """Adds one line; returns the intervals it completed, oldest first."""
        if int(line.get("step", 0)) != self.step:
            return []
        index = int(line["index"])
        if index < self._next:
            return []
        data, seen = self._pending.setdefault(index, (IntervalData(index, self.step), set()))
        source = line["source"]  # a local process's pid, or a remote worker's Locust id
        if source in seen:
            return []
        seen.add(source)
        data.add(line)
        done: list[IntervalData] = []
        while self._next in self._pending and len(self._pending[self._next][1]) >= self.sources:
            done.append(self._pending.pop(self._next)[0])
            self._next += 1
        return done


@dataclass(frozen=True)
class WindowFigures:
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests: int
    failures: int
    error_rate: float
    failures_by_code: dict[str, int]
    duration_s: float
    arrivals: int | None = None
    skipped: int | None = None
    late: int | None = None
    in_flight_max: int | None = None
    # p50/p95/p99 -> its 95% confidence interval (percentile_ci.py)
    intervals: dict[str, PercentileInterval] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # sorted


def window_figures(intervals: Iterable[IntervalData], interval_s: float) -> WindowFigures:
    """Figures over all requests (and arrivals) of the given (measured) intervals."""
    requests = failures = count = 0
    latencies: list[float] = []
    by_code: Counter[str] = Counter()
    arrivals = skipped = late = in_flight = None
    for data in intervals:
        count += 1
        requests += data.requests
        failures += data.failures
        latencies.extend(data.latencies_ms)
        by_code.update(data.failures_by_code)
        if data.arrivals is not None:
            arrivals = (arrivals or 0) + data.arrivals
            skipped = (skipped or 0) + (data.skipped or 0)
            late = (late or 0) + (data.late or 0)
            in_flight = max(in_flight or 0, data.in_flight_max or 0)
    # In completion order: the intervals' widening needs to see which requests were neighbours.
    cis = {
        f"p{pct}": ci
        for pct in (50, 95, 99)
        if (ci := percentile_interval(latencies, pct)) is not None
    }
    latencies.sort()
    duration = count * interval_s
    return WindowFigures(
        rps=requests / duration if duration else 0.0,
        p50_ms=percentile(latencies, 50),
        p95_ms=percentile(latencies, 95),
        p99_ms=percentile(latencies, 99),
        requests=requests,
        failures=failures,
        error_rate=failures / requests if requests else 0.0,
        failures_by_code=dict(sorted(by_code.items())),
        duration_s=duration,
        arrivals=arrivals,
        skipped=skipped,
        late=late,
        in_flight_max=in_flight,
        intervals=cis,
        latencies_ms=latencies,
    )


def settling(measured: Sequence[IntervalSample]) -> tuple[bool, str]:
    """perf_analyzer's rule: the last three windows' throughputs within 10% (max/min)."""
    if len(measured) < SETTLE_WINDOWS:
        return False, (
            f"only {len(measured)} measured interval(s); {SETTLE_WINDOWS} are needed to judge"
        )
    last = [s.rps for s in measured[-SETTLE_WINDOWS:]]
    shown = ", ".join(f"{r:.1f}" for r in last)
    low, high = min(last), max(last)
    if low <= 0:
        return False, f"last {SETTLE_WINDOWS} intervals: {shown} req/s (one had no requests)"
    ratio = high / low
    verdict = "<=" if ratio <= SETTLE_RATIO else ">"
    return ratio <= SETTLE_RATIO, (
        f"last {SETTLE_WINDOWS} intervals: {shown} req/s "
        f"(max/min {ratio:.3f} {verdict} {SETTLE_RATIO:.2f})"
    )

"""Reading the interval stream, and turning one window of it into a LoadResult.

Shared by the closed-loop run (one window from Locust's start) and the open-loop generator
(one window per step), so both measure alike: CPU snapshots at the end of the warm-up and
of the window, exact percentiles over the window's requests, the same saturation rules.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

from tuner.load import cpu
from tuner.load.arrivals import scheduled_count
from tuner.load.spec import IntervalSample, LoadResult
from tuner.load.window import IntervalData, WindowFigures, settling, window_figures

log = logging.getLogger("tuner.load")

SATURATION_CPU_PERCENT = 90.0
LATE_SHARE = 0.05  # more than 5% of arrivals sent late: the generator could not keep time
_CPU_WARNINGS = (
    "CPU usage above",
    "exceeded cpu threshold",
    "CPU usage threshold was exceeded",
    "CPU usage was too high",
)


def judge_saturation(log_text: str, cpu_by_process: dict[int, float]) -> tuple[bool, str | None]:
    """Was the load generator the bottleneck? Locust's own CPU warning, or any of its
    processes at >= 90% of a core over the measurement window (Locust checks only every
    10 s, so short windows rely on the second test)."""
    if any(marker in log_text for marker in _CPU_WARNINGS):
        return True, (
            "Locust warned that its CPU usage was above 90%, so the throughput is a lower bound"
        )
    busy = {pid: pct for pid, pct in cpu_by_process.items() if pct >= SATURATION_CPU_PERCENT}
    if busy:
        pid, pct = max(busy.items(), key=lambda item: item[1])
        return True, (
            f"Locust process {pid} used {pct:.0f}% of a core over the measurement window, "
            "so the throughput is a lower bound"
        )
    return False, None


class IntervalStream:
    """The interval file, read incrementally: complete lines only, in file order."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read(self) -> list[dict]:
        """New complete lines; ValueError names a malformed one."""
        if not self.path.exists():
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        lines = (self._partial + chunk).split(b"\n")
        self._partial = lines.pop()
        parsed = []
        for raw in lines:
            if raw.strip():
                parsed.append(json.loads(raw))
        return parsed


class WindowCollector:
    """One step's intervals: warm-up, then the measured window, then done."""

    def __init__(
        self,
        *,
        interval_s: float,
        warmup_intervals: int,
        measure_intervals: int,
        locust_pid: int,
        cpu_pids: Callable[[], list[int]] | None,
        on_interval: Callable[[IntervalSample], bool] | None,
        first_index: int = 0,
        t0_s: float = 0.0,
        target_rps: float | None = None,
        step: int = 0,
        max_in_flight: int | None = None,
        extend: Callable[[WindowFigures], int] | None = None,
        window_start: float | None = None,
        schedulers: int | None = None,
    ) -> None:
        self.interval_s = interval_s
        self.warmup_intervals = warmup_intervals
        self.measure_intervals = measure_intervals
        self.locust_pid = locust_pid
        self.cpu_pids = cpu_pids
        self.on_interval = on_interval
        self.first_index = first_index
        self.t0_s = t0_s
        self.target_rps = target_rps
        self.step = step
        self.max_in_flight = max_in_flight
        # At the window's last interval: how many more to measure (an undecided verdict).
        self.extend = extend
        self.window_start = window_start  # monotonic; None in closed mode
        self.schedulers = schedulers  # Locust processes whose schedules add up to the rate
        self.last_index = warmup_intervals + measure_intervals - 1
        self.samples: list[IntervalSample] = []
        self.measured: list[IntervalData] = []
        self.stopped_early = False
        self.done = False
        self.cpu_roots: list[int] = []
        self.cpu_before: cpu.CpuSnapshot | None = None
        self.cpu_after: cpu.CpuSnapshot | None = None

    def accept(self, data: IntervalData) -> bool:
        """Record one complete interval; False when the window is over (or was stopped)."""
        if self.done:
            return False
        if data.index > self.last_index:
            self.done = True
            return False
        if not self.cpu_roots:
            self.cpu_roots = [self.locust_pid, *(self.cpu_pids() if self.cpu_pids else [])]
        if self.cpu_before is None and data.index + 1 >= self.warmup_intervals:
            # The end of the warm-up, or of the first interval when there is no warm-up.
            self.cpu_before = cpu.snapshot(self.cpu_roots)
        sample = data.to_sample(
            self.interval_s, self.warmup_intervals, first_index=self.first_index, t0_s=self.t0_s
        )
        self.samples.append(sample)
        if not sample.in_warmup:
            self.measured.append(data)
        last = data.index == self.last_index
        if self.on_interval is not None and self.on_interval(sample) is False:
            self.stopped_early = not last
            self.cpu_after = cpu.snapshot(self.cpu_roots)
            self.done = True
            return False
        if last and self.extend is not None:
            extra = self.extend(window_figures(self.measured, self.interval_s))
            if extra > 0:
                self.last_index += extra
                last = False
        if last:
            self.cpu_after = cpu.snapshot(self.cpu_roots)
        self.done = last
        return not last

    def finish(self, log_text: str, artifacts: list[Path]) -> LoadResult:
        figures = window_figures(self.measured, self.interval_s)
        measured_samples = [s for s in self.samples if not s.in_warmup]
        settled, detail = settling(measured_samples)
        generator_cpu, per_process, by_pid = self._cpu()
        saturated, reason = judge_saturation(log_text, per_process)
        offered = limit_hit = offered_detail = scheduled = None
        if figures.arrivals is not None and figures.duration_s:
            offered = figures.arrivals / figures.duration_s
            scheduled = self._scheduled_rps(figures.duration_s)
            limit_hit = bool(figures.skipped)
            offered_detail = self._offered_detail(figures, offered)
            late_share = (figures.late or 0) / figures.arrivals if figures.arrivals else 0.0
            if not saturated and late_share > LATE_SHARE:
                saturated, reason = (
                    True,
                    (
                        f"Locust sent {late_share:.1%} of the window's arrivals more than 10 ms "
                        "after their scheduled time, so the generator could not keep the "
                        "Poisson schedule at this rate"
                    ),
                )
        log.info(
            "event=window_done step=%d target_rps=%s offered_rps=%s rps=%.1f p95_ms=%s "
            "requests=%d failures=%d saturated=%s limit_hit=%s",
            self.step,
            self.target_rps,
            f"{offered:.1f}" if offered is not None else None,
            figures.rps,
            figures.p95_ms,
            figures.requests,
            figures.failures,
            saturated,
            limit_hit,
        )
        return LoadResult(
            rps=figures.rps,
            p50_ms=figures.p50_ms,
            p95_ms=figures.p95_ms,
            p99_ms=figures.p99_ms,
            requests=figures.requests,
            failures=figures.failures,
            error_rate=figures.error_rate,
            failures_by_code=figures.failures_by_code,
            samples=self.samples,
            duration_s=figures.duration_s,
            generator_cpu_percent=generator_cpu,
            generator_saturated=saturated,
            saturation_reason=reason,
            settled=settled,
            settle_detail=detail,
            stopped_early=self.stopped_early,
            artifacts=artifacts,
            cpu_percent_by_pid=by_pid,
            step=self.step,
            target_rps=self.target_rps,
            offered_rps_achieved=offered,
            scheduled_rps=scheduled,
            arrivals=figures.arrivals,
            skipped=figures.skipped,
            late=figures.late,
            in_flight_max=figures.in_flight_max,
            in_flight_limit_hit=bool(limit_hit),
            offered_detail=offered_detail,
            percentile_intervals=figures.intervals,
            latencies_ms=figures.latencies_ms,
            window_mono=(
                (self.window_start, self.window_start + figures.duration_s)
                if self.window_start is not None
                else None
            ),
        )

    def _scheduled_rps(self, duration_s: float) -> float | None:
        """The arrivals the processes' schedules held in the measured intervals, per second
        (arrivals.py draws them from the rate, the process index and the window alone)."""
        if not self.schedulers or not self.target_rps or not self.measured:
            return None
        count = scheduled_count(
            self.target_rps,
            self.schedulers,
            self.warmup_intervals * self.interval_s,
            self.measure_intervals * self.interval_s,
            self.interval_s,
            range(self.measured[0].index, self.measured[-1].index + 1),
        )
        return count / duration_s

    def _offered_detail(self, figures, offered: float) -> str:
        target = self.target_rps or 0.0
        if figures.skipped:
            due = figures.arrivals + figures.skipped
            return (
                f"offered rate not achieved: in-flight ceiling {self.max_in_flight} reached; "
                f"{figures.skipped} of {due} arrivals ({figures.skipped / due:.1%}) were not "
                f"sent, {offered:.1f} of {target:g} req/s offered"
            )
        return (
            f"offered {offered:.1f} req/s against a target of {target:g} "
            f"({figures.arrivals} arrivals in {figures.duration_s:g} s, none skipped)"
        )

    def _cpu(self) -> tuple[float | None, dict[int, float], dict[int, float]]:
        before, after = self.cpu_before, self.cpu_after
        if before is None or after is None:
            return None, {}, {}
        per_process = cpu.percent_by_process(before, after, self.locust_pid)
        total = sum(per_process.values()) if per_process else None
        by_pid = {}
        for pid in self.cpu_roots[1:]:
            value = cpu.percent_of_tree(before, after, pid)
            if value is not None:
                by_pid[pid] = round(value, 1)
        return (round(total, 1) if total is not None else None), per_process, by_pid

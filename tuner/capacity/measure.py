"""Measuring one configuration's capacity: restart the server with it, then run the search's
steps through one open-loop Locust session, reading the model server's metrics around each
step's window.

The same code serves the trials and the confirmation pass, so a confirmed capacity is found
exactly the way the trial's own was.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_server.batching_parameters import BatchingParameters
from tuner.capacity.early import EarlyFail
from tuner.capacity.search import SearchOutcome, SearchSettings, search
from tuner.capacity.step import CurvePoint, StepCriteria, StepResult, judge
from tuner.load import IntervalSample, LoadGeneratorError, LoadProfile, OpenLoopGenerator
from tuner.measurement import Measurer, load_failed
from tuner.servers.metrics import ServerMetricsSnapshot, mean_batch_size

OnStep = Callable[[CurvePoint, list[IntervalSample]], None]


@dataclass
class CapacityMeasurement:
    outcome: SearchOutcome
    samples: dict[int, list[IntervalSample]] = field(default_factory=dict)  # step -> intervals


class CapacityMeasurer:
    def __init__(
        self,
        measurer: Measurer,
        profile: LoadProfile,
        settings: SearchSettings,
        criteria: StepCriteria,
    ) -> None:
        self.measurer = measurer
        self.profile = profile
        self.settings = settings
        self.criteria = criteria

    @property
    def backend(self):
        return self.measurer.backend

    def measure(
        self,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
        *,
        start_rps: float,
        incumbent_rps: float | None = None,
        may_prune: bool = True,
        on_step: OnStep | None = None,
    ) -> CapacityMeasurement:
        """Raises TrialFailed with the fail_reason when the configuration cannot be measured."""
        generator = OpenLoopGenerator(
            self.profile,
            self.measurer.target_url,
            workdir / "load",
            cpu_pids=self.measurer.cpu_pids,
        )
        try:
            generator.launch()  # Locust starts while the model server restarts
            self.measurer.prepare(batching, server_flags, workdir)
            generator.start()
            runner = StepRunner(
                generator,
                self.profile,
                self.measurer.metrics,
                self.measurer,
                self.criteria,
                drain_rps=self.settings.min_rps,
            )

            def report(point: CurvePoint) -> None:
                if on_step is not None:
                    on_step(point, runner.samples.get(point.step, []))

            outcome = search(
                runner,
                self.settings,
                self.criteria,
                start_rps=start_rps,
                incumbent_rps=incumbent_rps,
                may_prune=may_prune,
                on_step=report,
            )
        except LoadGeneratorError as exc:
            raise load_failed(exc) from None
        finally:
            generator.close()
        return CapacityMeasurement(outcome, runner.samples)


class StepRunner:
    """Runs one step on a running generator and turns its LoadResult into a StepResult.

    The metrics are scraped when the step's warm-up ends and when its window ends, so the
    mean batch size covers the measured window only. Without a model server to ask (a test
    target), `metrics` returns None and the batch size is unknown. Given the criteria, a
    window that can no longer pass ends early (early.py), and a failed step is followed by a
    one-interval trickle at `drain_rps` before the next one, so its backlog does not fail it.
    """

    def __init__(
        self,
        generator: Any,
        profile: LoadProfile,
        metrics: Callable[[], ServerMetricsSnapshot | None] = lambda: None,
        measurer: Measurer | None = None,
        criteria: StepCriteria | None = None,
        drain_rps: float = 1.0,
    ) -> None:
        self.generator = generator
        self.criteria = criteria  # given: a window that can no longer pass is ended early
        self.profile = profile
        self.metrics = metrics
        self.measurer = measurer
        self.samples: dict[int, list[IntervalSample]] = {}  # step -> its intervals
        self.drain_rps = drain_rps
        self._drain_first = False

    def __call__(self, rate: float) -> StepResult:
        started = time.monotonic()
        if self._drain_first:
            self._drain()
        warmup = self.profile.warmup_intervals
        scrapes: dict[str, ServerMetricsSnapshot | None] = {}
        if warmup == 0:
            scrapes["before"] = self.metrics()
            if self.measurer is not None:
                self.measurer.start_cpu_meter()
        seen = 0
        early = (
            EarlyFail(self.criteria, rate, self.profile.measure_s, self.profile.max_in_flight)
            if self.criteria is not None
            else None
        )

        def on_interval(sample: IntervalSample) -> bool:
            nonlocal seen
            if sample.in_warmup:
                seen += 1
                if seen == warmup:
                    scrapes["before"] = self.metrics()
                    if self.measurer is not None:
                        self.measurer.start_cpu_meter()
                return True
            return early is None or early.check(sample) is None

        result = self.generator.step(rate, on_interval=on_interval)
        after = self.metrics()
        if self.measurer is not None:
            self.measurer.check_bench(result)
        self.samples[len(self.samples)] = list(result.samples)
        before = scrapes.get("before")
        cpu = result.cpu_percent_by_pid
        m = self.measurer
        offered = result.offered_rps_achieved
        step = StepResult(
            target_rps=rate,
            offered_rps=offered if offered is not None else rate,
            completed_rps=result.rps,
            goodput_rps=result.rps * (1.0 - result.error_rate),
            p50_ms=result.p50_ms,
            p95_ms=result.p95_ms,
            p99_ms=result.p99_ms,
            error_rate=result.error_rate,
            requests=result.requests,
            failures=result.failures,
            failures_by_code=dict(result.failures_by_code),
            in_flight_limit_hit=bool(result.in_flight_limit_hit),
            in_flight_detail=result.offered_detail if result.in_flight_limit_hit else None,
            mean_batch_size=mean_batch_size(before, after) if before and after else None,
            cpu_model_server_percent=m.server_cpu(cpu) if m else None,
            cpu_service_percent=m.service_cpu(cpu) if m else None,
            cpu_load_generator_percent=result.generator_cpu_percent,
            duration_s=result.duration_s,
            elapsed_s=time.monotonic() - started,
            ended_early=early.reason if early is not None and result.stopped_early else None,
            generator_saturated=bool(result.generator_saturated),
            saturation_reason=result.saturation_reason,
        )
        self._drain_first = self.criteria is not None and not judge(step, self.criteria).passed
        return step

    def _drain(self) -> None:
        """After a failed step the server may still hold its backlog (up to the in-flight
        ceiling), which would make the next, lower step fail too: one interval at a trickle
        lets it drain first. Nothing of it is measured or stored."""
        self.generator.step(self.drain_rps, warmup_s=0.0, measure_s=self.profile.interval_s)


class StepWriter:
    """Stores each step as it ends: its intervals (numbered on across the steps, so the
    samples table's key stays unique) and its row of the capacity curve."""

    def __init__(
        self, store: Any, study_name: str, trial_number: int, phase: str = "trial", repeat: int = 0
    ) -> None:
        self.store = store
        self.key = (study_name, trial_number)
        self.phase = phase
        self.repeat = repeat
        self._next_index = 0

    def __call__(self, point: CurvePoint, intervals: list[IntervalSample]) -> None:
        renumbered = [
            dataclasses.replace(s, index=self._next_index + i) for i, s in enumerate(intervals)
        ]
        self._next_index += len(intervals)
        where = {"phase": self.phase, "repeat": self.repeat}
        self.store.write(*self.key, renumbered, step=point.step, **where)
        self.store.write_steps(*self.key, [point.as_dict()], **where)

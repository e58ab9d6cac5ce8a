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
from tuner.capacity.search import SearchOutcome, SearchSettings, search
from tuner.capacity.step import CurvePoint, StepCriteria, StepResult
from tuner.load import IntervalSample, LoadGeneratorError, LoadProfile
from tuner.measurement import Measurer, load_failed
from tuner.servers.metrics import mean_batch_size

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
        from tuner.load import OpenLoopGenerator  # TODO(issue-8-load): top-level once merged

        self.measurer.prepare(batching, server_flags, workdir)
        samples: dict[int, list[IntervalSample]] = {}
        try:
            with OpenLoopGenerator(
                self.profile,
                self.measurer.service.url,
                workdir / "load",
                cpu_pids=self.measurer.cpu_pids,
            ) as generator:

                def measure_step(rate: float) -> StepResult:
                    result, intervals = self._step(generator, rate)
                    samples[len(samples)] = intervals
                    return result

                def report(point: CurvePoint) -> None:
                    if on_step is not None:
                        on_step(point, samples.get(point.step, []))

                outcome = search(
                    measure_step,
                    self.settings,
                    self.criteria,
                    start_rps=start_rps,
                    incumbent_rps=incumbent_rps,
                    may_prune=may_prune,
                    on_step=report,
                )
        except LoadGeneratorError as exc:
            raise load_failed(exc) from None
        return CapacityMeasurement(outcome, samples)

    def _step(self, generator: Any, rate: float) -> tuple[StepResult, list[IntervalSample]]:
        """One step; the metrics are scraped when its warm-up ends and when its window ends,
        so the mean batch size covers the measured window only."""
        started = time.monotonic()
        warmup = self.profile.warmup_intervals
        scrapes: dict[str, object] = {}
        if warmup == 0:
            scrapes["before"] = self.measurer.metrics()
        seen = 0

        def on_interval(sample: IntervalSample) -> bool:
            nonlocal seen
            if sample.in_warmup:
                seen += 1
                if seen == warmup:
                    scrapes["before"] = self.measurer.metrics()
            return True

        result = generator.step(rate, on_interval=on_interval)
        after = self.measurer.metrics()
        self.measurer.check_server()
        before = scrapes.get("before")
        cpu = result.cpu_percent_by_pid
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
            cpu_model_server_percent=self.measurer.server_cpu(cpu),
            cpu_service_percent=self.measurer.service_cpu(cpu),
            cpu_load_generator_percent=result.generator_cpu_percent,
            duration_s=result.duration_s,
            elapsed_s=time.monotonic() - started,
        )
        return step, list(result.samples)


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

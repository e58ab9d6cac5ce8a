"""Measuring one configuration's capacity: restart the server with it, then run the search's
steps through one open-loop Locust session (each step by step_runner.py: drained, warm,
decided, re-measured after a pause of the bench's own).

The same code serves the trials and the confirmation pass, so a confirmed capacity is found
exactly the way the trial's own was.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from model_server.batching_parameters import BatchingParameters
from model_server.pauses import ENV_LOG
from tuner.capacity.pauses import PauseLog
from tuner.capacity.search import SearchOutcome, SearchSettings, search
from tuner.capacity.step import CurvePoint, StepCriteria
from tuner.capacity.step_runner import StepRunner
from tuner.load import IntervalSample, LoadGeneratorError, LoadProfile, OpenLoopGenerator
from tuner.measure.fixed_load import Measurer, load_failed

__all__ = ["CapacityMeasurement", "CapacityMeasurer", "StepRunner", "StepWriter"]

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
        self._pauses: PauseLog | None = None

    def _pause_log(self) -> PauseLog | None:
        """The study's pause file (set by the study, tuner/capacity/pauses.py), read on from
        where the last trial left it."""
        path = os.environ.get(ENV_LOG)
        if not path:
            return None
        if self._pauses is None or self._pauses.path != Path(path):
            self._pauses = PauseLog(Path(path))
        return self._pauses

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
        incumbent_low: float | None = None,
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
                max_extra_s=self.settings.step_extra_s,
                pauses=self._pause_log(),
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
                incumbent_low=incumbent_low,
                may_prune=may_prune,
                on_step=report,
            )
        except LoadGeneratorError as exc:
            raise load_failed(exc) from None
        finally:
            generator.close()
        return CapacityMeasurement(outcome, runner.samples)


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

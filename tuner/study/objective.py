"""One trial: suggest, measure, score, record — and always say why when it fails.

Optuna stores no failure reasons, so a failed trial carries `fail_reason` (a slug) and
`fail_detail` (the sentence, with the server's log tail where there is one) as user attrs.
Artifacts are attached before the trial ends, since Optuna refuses writes to finished trials.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import optuna

from model_server.batching_parameters import BatchingParameters, render
from search_spaces.loader import SearchSpace, Suggestion
from tuner.capacity import host_speed
from tuner.capacity.record import capacity_attrs, constraints
from tuner.capacity.search_run import CapacityMeasurer, StepWriter
from tuner.capacity.step import CurvePoint
from tuner.config import TunerConfig
from tuner.coordination.worker_name import WORKER_ATTR
from tuner.errors import StorageLost, TrialFailed
from tuner.load import IntervalSample
from tuner.measure.fixed_load import Measurement, Measurer
from tuner.storage import SampleStore, StorageError, attach_files
from tuner.storage.artifacts import unwritable
from tuner.study.trial_pruning import EarlyStop
from tuner.trial_record import (
    HOST_LOOP_ATTR,
    HOST_MEMORY_ATTR,
    NO_BATCHING,
    REFERENCE_ATTR,
    SAME_PARAMS_ATTR,
    best_feasible_value,
    constraint_values,
    incumbent,
    measurement_attrs,
    meets,
    record_constraints,
)

log = logging.getLogger("tuner")


def same_params_as(trial: optuna.Trial) -> int | None:
    """The first finished trial that measured exactly these parameters, if any."""
    finished = (
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.PRUNED,
    )
    for other in trial.study.get_trials(deepcopy=False, states=finished):
        same_reference = other.user_attrs.get(REFERENCE_ATTR) == trial.user_attrs.get(
            REFERENCE_ATTR
        )
        if other.params == trial.params and (trial.params or same_reference):
            return other.number
    return None


def suggestion_for(trial: optuna.Trial, space: SearchSpace) -> Suggestion | None:
    """None for the no-batching reference point, else the space's suggestion."""
    if trial.user_attrs.get(REFERENCE_ATTR) == NO_BATCHING:
        return None
    return space.suggest(trial)


@dataclass
class Objective:
    config: TunerConfig
    space: SearchSpace
    measurer: Measurer
    samples: SampleStore
    storage: optuna.storages.BaseStorage
    artifact_store: object
    workdir: Path
    capacity: CapacityMeasurer | None = None  # capacity mode; None = the closed loop
    # this tuner's name, recorded on each trial (tuner/coordination/worker_name.py)
    worker: str | None = None
    # Draws the trial's curve for optuna-dashboard (tuner/review/dashboard.py's
    # attach_trial_curve, given by the run), so a trial does not import the review package.
    draw_curve: Callable[[optuna.Trial, Path], None] | None = None
    _stop_reason: str | None = None
    _artifact_problem: str | None = None  # the last artifact failure logged

    def __call__(self, trial: optuna.Trial) -> float:
        if self.worker:
            trial.set_user_attr(WORKER_ATTR, self.worker)
        workdir = self.workdir / f"trial-{trial.number:04d}"
        suggestion = suggestion_for(trial, self.space)
        batching = suggestion.batching if suggestion else None
        server_flags = suggestion.server_flags if suggestion else {}
        trial.set_user_attr("batching_enabled", batching is not None)
        trial.set_user_attr("batching_file", render(batching) if batching else None)
        trial.set_user_attr("server_flags", server_flags)
        trial.set_user_attr("backend", self.measurer.backend.name)
        cpus = getattr(getattr(self.measurer.backend, "spec", None), "cpus", None)
        trial.set_user_attr("server_cpus", cpus.describe() if cpus is not None else None)
        same = same_params_as(trial)
        if same is not None:  # samplers repeat themselves in small spaces: say so
            trial.set_user_attr(SAME_PARAMS_ATTR, same)
        lost = False
        try:
            if self.capacity is not None:
                return self._capacity_trial(trial, batching, server_flags, workdir)
            measurement = self.measurer.measure(
                batching, server_flags, workdir, on_interval=self._reporter(trial)
            )
            return self._record(trial, measurement)
        except TrialFailed as exc:
            trial.set_user_attr("fail_reason", exc.reason)
            trial.set_user_attr("fail_detail", _with_tail(str(exc), exc.details))
            for key in ("exit_code",):
                if key in exc.details:
                    trial.set_user_attr(key, exc.details[key])
            raise
        except KeyboardInterrupt:
            trial.set_user_attr("fail_reason", "interrupted")
            trial.set_user_attr("fail_detail", "the study was interrupted (Ctrl-C or SIGTERM)")
            raise
        except optuna.TrialPruned:
            raise
        except StorageError as exc:  # retried for study.storage_retry_s: the database is gone
            lost = True
            raise StorageLost(str(exc)) from None
        except Exception as exc:  # a bug: still say why the trial failed
            trial.set_user_attr("fail_reason", "tuner_error")
            trial.set_user_attr("fail_detail", f"{type(exc).__name__}: {exc}")
            raise
        finally:
            if not lost:
                self._attach(trial, workdir)

    def _reporter(self, trial: optuna.Trial):
        """Reports each measured interval's throughput to Optuna (the dashboard plots it) and
        stops the trial early when tuner/study/trial_pruning.py says it is clearly hopeless."""
        percentile = self.config.objective.percentile
        rule = EarlyStop(
            percentile=percentile,
            slo_ms=self.config.objective.slo_ms,
            best_feasible_rps=best_feasible_value(trial.study),
            is_reference=REFERENCE_ATTR in trial.user_attrs,
        )

        def on_interval(sample: IntervalSample) -> bool:
            if sample.in_warmup:
                return True
            trial.report(sample.rps, step=sample.index)
            reason = rule.check(sample.rps, getattr(sample, f"{percentile}_ms"))
            if reason is not None:
                self._stop_reason = reason
                return False
            return True

        self._stop_reason = None
        return on_interval

    def _record(self, trial: optuna.Trial, m: Measurement) -> float:
        load = m.load
        slo = self.config.objective.slo_ms
        latency = m.percentile_ms(self.config.objective.percentile)
        constraints = constraint_values(
            latency, load.error_rate, slo, self.config.objective.max_error_rate
        )
        record_constraints(trial, constraints)
        attrs = measurement_attrs(m)
        attrs["feasible"] = meets(constraints)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        self.samples.write(trial.study.study_name, trial.number, load.samples)
        # Only a run that really stopped early is pruned; a stop asked for in the last
        # interval leaves a complete measurement, and the trial stays complete.
        if load.stopped_early:
            reason = self._stop_reason or "stopped early"
            trial.set_user_attr("pruned_because", reason)
            raise optuna.TrialPruned(reason)
        return m.goodput_rps

    def _capacity_trial(
        self,
        trial: optuna.Trial,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
    ) -> float:
        """Search this configuration's capacity: probe the best feasible capacity so far
        (reference trials are never pruned), report each step's goodput to Optuna, store
        each step as it ends, and record the curve and the capacity."""
        assert self.capacity is not None
        o = self.config.objective
        store = StepWriter(self.samples, trial.study.study_name, trial.number)

        def on_step(point: CurvePoint, intervals: list) -> None:
            trial.report(point.result.goodput_rps, step=point.step)
            store(point, intervals)

        started = time.monotonic()
        best = incumbent(trial.study)
        m = self.capacity.measure(
            batching,
            server_flags,
            workdir,
            start_rps=self.config.load.start_rps,
            incumbent_rps=best[0] if best else None,
            incumbent_low=best[1] if best else None,
            may_prune=REFERENCE_ATTR not in trial.user_attrs,
            on_step=on_step,
        )
        outcome = m.outcome
        attrs = capacity_attrs(outcome, o.percentile)
        for key, value in attrs.items():
            trial.set_user_attr(key, value)
        for attr, ms in (
            (HOST_LOOP_ATTR, host_speed.loop_ms_since(started)),
            (HOST_MEMORY_ATTR, host_speed.memory_ms_since(started)),
        ):
            if ms is not None:  # the machine's speed while it measured: a cause of drift
                trial.set_user_attr(attr, round(ms, 3))
        if outcome.pruned_because:
            trial.set_user_attr("pruned_because", outcome.pruned_because)
            raise optuna.TrialPruned(outcome.pruned_because)
        values = constraints(outcome, o.percentile, o.slo_ms, o.max_error_rate)
        record_constraints(trial, values)
        trial.set_user_attr("feasible", meets(values))
        return attrs["capacity_rps"]  # rounded, as show and the dashboard read it

    def _attach(self, trial: optuna.Trial, workdir: Path) -> None:
        """The trial's files into the artifact store; a store that cannot take them (full,
        read-only, gone) never loses the measurement: the trial records why in
        `artifacts_failed`, and the log says it once per cause, not once per trial."""
        problem = unwritable(self.artifact_store)
        if problem is None:
            if self.draw_curve is not None:
                self.draw_curve(trial, workdir)
            files = [workdir / "batching_parameters.txt", workdir / "server.log"]
            load_dir = workdir / "load"
            if load_dir.is_dir():
                files += sorted(p for p in load_dir.iterdir() if p.suffix in (".csv", ".log"))
            try:
                attach_files(
                    trial, self.storage, self.artifact_store, [f for f in files if f.exists()]
                )
            except Exception as exc:  # a store that fails mid-write must not lose the trial
                problem = str(exc)
        if problem is None:
            return
        trial.set_user_attr("artifacts_failed", problem)
        if problem != self._artifact_problem:
            self._artifact_problem = problem
            log.warning(
                "event=artifacts_failed trial=%d reason=%r (the measurement is stored; later "
                "trials failing for the same reason are not logged again)",
                trial.number,
                problem,
            )


def _with_tail(message: str, details: dict[str, object]) -> str:
    tail = str(details.get("log_tail") or "").strip()
    return f"{message}\n--- log tail ---\n{tail}" if tail else message

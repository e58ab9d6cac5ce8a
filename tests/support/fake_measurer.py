"""A scripted measurer beside the real one, for the tests and bench/replay.py (not shipped).

`Objective`, `confirm()` and `optimize()` take whatever measures a configuration. The real
measurers restart a model server and run Locust; these answer from a function of the batching
parameters instead, so the study logic (feasibility, pruning, fail reasons, the confirmation's
medians, n_trials and the reference points) can be checked in milliseconds, with no process.

    def served(batching, server_flags, rate_rps) -> Served: ...

`rate_rps` is the step's offered rate in capacity mode and None in the closed loop; raising
TrialFailed from it scripts a failed measurement. The capacity fake runs the real capacity
search (tuner/capacity/search.py) over steps built from the function, on a simulated clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from model_server.batching_parameters import BatchingParameters
from tuner.capacity.search import SearchSettings, search
from tuner.capacity.search_run import CapacityMeasurement, CapacityMeasurer, OnStep
from tuner.capacity.step import CurvePoint, StepCriteria, StepResult
from tuner.load import IntervalSample, LoadProfile, LoadResult
from tuner.measure.fixed_load import Measurement
from tuner.study.run import Parts


@dataclass(frozen=True)
class Served:
    """What a configuration does at a rate (or in the closed loop): a window's figures."""

    rps: float  # completed requests per second, failures included
    p95_ms: float | None
    error_rate: float = 0.0
    p50_ms: float | None = None  # default: half of p95
    p99_ms: float | None = None  # default: p95
    mean_batch_size: float | None = None


ServedFn = Callable[[BatchingParameters | None, dict[str, str], float | None], Served]


@dataclass(frozen=True)
class Call:
    batching: BatchingParameters | None
    server_flags: dict[str, str]
    workdir: Path


class FakeBackend:
    """The backend interface optimize() uses, with no server behind it."""

    name = "fake"
    grpc_target = "fake:0"

    def prepare(self, workdir: Path) -> list[str]:
        return []

    def stop(self) -> None:
        pass


class FakeService:
    """The service interface optimize() uses, with no process behind it."""

    url = "http://fake.invalid"

    def start(self, timeout_s: float) -> None:
        pass

    def stop(self) -> None:
        pass


@dataclass
class FakeMeasurer:
    """The closed-loop Measurer's interface: `measure()` -> a Measurement from `served`."""

    served: ServedFn
    intervals: int = 5  # measured intervals of one second each, after one of warm-up
    backend: FakeBackend = field(default_factory=FakeBackend)
    service: FakeService = field(default_factory=FakeService)
    calls: list[Call] = field(default_factory=list)  # every configuration measured, in order

    def measure(
        self,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
        on_interval: Callable[[IntervalSample], bool] | None = None,
    ) -> Measurement:
        self.calls.append(Call(batching, dict(server_flags), workdir))
        s = self.serve(batching, server_flags, workdir, None)
        samples: list[IntervalSample] = []
        stopped_early = False
        for index in range(1 + self.intervals):
            sample = _interval(index, s, in_warmup=index == 0)
            samples.append(sample)
            go_on = on_interval(sample) if on_interval is not None else True
            if not go_on and index < self.intervals:
                stopped_early = True
                break
        measured = [x for x in samples if not x.in_warmup]
        requests = sum(x.requests for x in measured)
        failures = sum(x.failures for x in measured)
        load = LoadResult(
            rps=s.rps,
            p50_ms=_p50(s),
            p95_ms=s.p95_ms,
            p99_ms=_p99(s),
            requests=requests,
            failures=failures,
            error_rate=s.error_rate,
            failures_by_code={"model_server_overloaded": failures} if failures else {},
            samples=samples,
            duration_s=float(len(measured)),
            generator_cpu_percent=None,
            generator_saturated=False,
            saturation_reason=None,
            settled=True,
            settle_detail="scripted",
            stopped_early=stopped_early,
            artifacts=[],
        )
        return Measurement(
            load=load,
            goodput_rps=s.rps * (1.0 - s.error_rate),
            mean_batch_size=s.mean_batch_size,
            server_queue_full=None,
            cpu_service_percent=None,
            cpu_model_server_percent=None,
        )

    def serve(
        self,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
        rate_rps: float | None,
    ) -> Served:
        workdir.mkdir(parents=True, exist_ok=True)
        return self.served(batching, server_flags, rate_rps)


class FakeCapacityMeasurer(CapacityMeasurer):
    """The CapacityMeasurer's interface: the real search over scripted steps."""

    def __init__(
        self,
        measurer: FakeMeasurer,
        profile: LoadProfile,
        settings: SearchSettings,
        criteria: StepCriteria,
    ) -> None:
        super().__init__(measurer, profile, settings, criteria)  # type: ignore[arg-type]

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
        fake: FakeMeasurer = self.measurer  # type: ignore[assignment]
        fake.calls.append(Call(batching, dict(server_flags), workdir))
        now = [0.0]

        def step(rate: float) -> StepResult:
            s = fake.serve(batching, server_flags, workdir, rate)
            now[0] += self.settings.step_s
            return StepResult(
                target_rps=rate,
                offered_rps=rate,
                completed_rps=s.rps,
                goodput_rps=s.rps * (1.0 - s.error_rate),
                p50_ms=_p50(s),
                p95_ms=s.p95_ms,
                p99_ms=_p99(s),
                error_rate=s.error_rate,
                requests=round(s.rps * self.profile.measure_s),
                mean_batch_size=s.mean_batch_size,
                duration_s=self.profile.measure_s,
                elapsed_s=self.settings.step_s,
            )

        def report(point: CurvePoint) -> None:
            if on_step is not None:
                on_step(point, [])

        outcome = search(
            step,
            self.settings,
            self.criteria,
            start_rps=start_rps,
            incumbent_rps=incumbent_rps,
            incumbent_low=incumbent_low,
            may_prune=may_prune,
            on_step=report,
            clock=lambda: now[0],
        )
        return CapacityMeasurement(outcome)


def _interval(index: int, s: Served, in_warmup: bool) -> IntervalSample:
    requests = round(s.rps)
    return IntervalSample(
        index=index,
        t_s=float(index + 1),
        in_warmup=in_warmup,
        requests=requests,
        failures=round(requests * s.error_rate),
        rps=s.rps,
        p50_ms=_p50(s),
        p95_ms=s.p95_ms,
        p99_ms=_p99(s),
    )


def _p50(s: Served) -> float | None:
    return s.p50_ms if s.p50_ms is not None or s.p95_ms is None else s.p95_ms / 2


def _p99(s: Served) -> float | None:
    return s.p99_ms if s.p99_ms is not None else s.p95_ms


def fake_parts(measurer: FakeMeasurer) -> Parts:
    """optimize()'s parts with `measurer` (and its capacity fake) in place of the real ones."""
    return Parts(
        create_backend=lambda *args, **kwargs: (measurer.backend, "scripted (fake_measurer)"),
        service_for=lambda *args, **kwargs: measurer.service,
        measurer=lambda *args, **kwargs: measurer,
        capacity_measurer=lambda _measurer, profile, settings, criteria: FakeCapacityMeasurer(
            measurer, profile, settings, criteria
        ),
    )

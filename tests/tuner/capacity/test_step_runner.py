"""StepRunner's bookkeeping around a step, against a scripted generator (the real generator
and stubs are in test_path_independence.py): a drain that does not finish fails the step
unmeasured; a failing window hit by a pause of the bench is measured once more; the ramp
comes only before the first step; an undecided window is measured longer only when that
could decide it."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from tuner.capacity.pauses import PauseLog
from tuner.capacity.step import StepCriteria, StepResult, judge
from tuner.capacity.step_runner import StepRunner
from tuner.load import LoadProfile, LoadResult
from tuner.load.generator import Drain
from tuner.load.window import IntervalData, WindowFigures, window_figures
from tuner.percentile_ci import PercentileInterval

CRITERIA = StepCriteria(percentile="p95", slo_ms=40.0, max_error_rate=0.01, min_goodput_ratio=0.95)
PROFILE = LoadProfile(arrival="poisson", warmup_s=1.0, measure_s=3.0, interval_s=1.0)


def result(rate: float, p95: float) -> LoadResult:
    now = time.monotonic()
    return LoadResult(
        rps=rate, p50_ms=5.0, p95_ms=p95, p99_ms=p95, requests=int(rate * 3), failures=0,
        error_rate=0.0, failures_by_code={}, samples=[], duration_s=3.0,
        generator_cpu_percent=None, generator_saturated=False, saturation_reason=None,
        settled=True, settle_detail="", stopped_early=False, artifacts=[],
        offered_rps_achieved=rate, window_mono=(now - 3.0, now),
    )  # fmt: skip


@dataclass
class Scripted:
    p95s: list[float]
    drained: bool = True
    calls: list[tuple] = field(default_factory=list)

    def drain(self, timeout_s: float) -> Drain:
        self.calls.append(("drain", timeout_s))
        return Drain(self.drained, 12, 0.4 if self.drained else timeout_s)

    def step(self, rate, on_interval=None, *, warmup_s=None, measure_s=None, **_):
        self.calls.append(("step", rate, warmup_s))
        if warmup_s == 0.0:  # the ramp
            return result(rate, 1.0)
        return result(rate, self.p95s.pop(0))


def one_pause(tmp_path: Path, process: str, ms: float, kind: str) -> PauseLog:
    """A pause file holding one pause that ended half a second ago: inside the next window."""
    log = tmp_path / "pauses.jsonl"
    pause = {"p": process, "pid": 1, "t": time.monotonic() - 0.5, "ms": ms, "kind": kind}
    log.write_text(json.dumps(pause) + "\n")
    return PauseLog(log)


def measured(gen: Scripted, pauses: PauseLog | None) -> StepResult:
    """One step at 300 req/s, no ramp."""
    return StepRunner(gen, PROFILE, criteria=CRITERIA, ramp=False, pauses=pauses)(300.0)


def test_the_ramp_comes_first_then_every_step_is_drained() -> None:
    gen = Scripted([10.0, 10.0])
    runner = StepRunner(gen, PROFILE, criteria=CRITERIA)
    first = runner(200.0)
    second = runner(400.0)
    # the scripted generator reports no interval, so the ramp ran to its bound
    assert first.ramp_outcome == "bound" and first.ramp_s is not None
    assert second.ramp_outcome is None and second.ramp_s is None
    # unmeasured: a quarter and half the first rate, then the rate until settled; the ramp
    # is drained like any step before the first one
    assert [c[0] for c in gen.calls] == ["step"] * 3 + ["drain", "step", "drain", "step"]
    assert gen.calls[:3] == [("step", 50.0, 0.0), ("step", 100.0, 0.0), ("step", 200.0, 0.0)]
    assert gen.calls[3] == gen.calls[5] == ("drain", PROFILE.request_timeout_s + 2.0)


def test_a_drain_that_does_not_finish_fails_the_step_unmeasured() -> None:
    gen = Scripted([10.0], drained=False)
    runner = StepRunner(gen, PROFILE, criteria=CRITERIA, ramp=False)
    step = runner(300.0)
    assert [c[0] for c in gen.calls] == ["drain"]
    verdict = judge(step, CRITERIA)
    assert not verdict.passed and verdict.reason.startswith("not drained: of 12 requests")


def test_a_window_hit_by_a_pause_is_measured_again(tmp_path: Path) -> None:
    gen = Scripted([120.0, 15.0])  # failed with the pause in it, then passes
    pauses = one_pause(tmp_path, "service", 95.0, "gc2")
    runner = StepRunner(gen, PROFILE, criteria=CRITERIA, ramp=False, pauses=pauses)
    step = runner(300.0)
    assert step.p95_ms == 15.0 and judge(step, CRITERIA).passed
    assert step.remeasured_because == "a 95 ms pause of the service hit the window"
    assert [c[0] for c in gen.calls] == ["drain", "step", "drain", "step"]
    assert list(runner.samples) == [0]  # the step keeps one place


def test_a_window_in_a_slow_spell_of_the_machine_is_measured_again(tmp_path: Path) -> None:
    step = measured(Scripted([120.0, 15.0]), one_pause(tmp_path, "host", 500.0, "slow_host"))
    assert step.p95_ms == 15.0 and judge(step, CRITERIA).passed
    assert step.remeasured_because.startswith("the machine itself ran slow for 500 ms")


def test_a_failure_the_pause_cannot_explain_counts(tmp_path: Path) -> None:
    # p95 120 ms is 80 ms over the SLO: a 20 ms pause cannot have added that
    step = measured(Scripted([120.0, 15.0]), one_pause(tmp_path, "model_server", 20.0, "gc2"))
    assert step.p95_ms == 120.0 and step.remeasured_because is None
    assert step.pause_max_ms == {"model_server": 20.0}  # recorded all the same
    # 50 ms is within 20 ms of the SLO: the pause may have made the difference
    step = measured(Scripted([50.0, 15.0]), one_pause(tmp_path, "model_server", 20.0, "gc2"))
    assert step.remeasured_because == "a 20 ms pause of the model server hit the window"


def test_an_event_loop_lagging_behind_its_load_is_no_reason_for_a_second_window(
    tmp_path: Path,
) -> None:
    # 10 ms over the SLO: a 30 ms stall could explain it, a 30 ms lag does not
    step = measured(Scripted([50.0, 15.0]), one_pause(tmp_path, "service", 30.0, "loop"))
    assert step.p95_ms == 50.0 and step.remeasured_because is None
    assert step.pause_max_ms == {"service": 30.0} and step.stall_max_ms == {}


def test_a_failure_with_no_pause_counts() -> None:
    step = measured(Scripted([120.0, 15.0]), None)
    assert step.p95_ms == 120.0 and step.remeasured_because is None


def window(latencies: list[float]) -> WindowFigures:
    """A 3-s window of these latencies, in completion order, a third in each interval."""
    third = len(latencies) // 3
    return window_figures(
        [
            IntervalData(
                index=i, requests=third, latencies_ms=latencies[i * third : (i + 1) * third]
            )
            for i in range(3)
        ],
        interval_s=1.0,
    )


@dataclass
class Extending(Scripted):
    """Hands the window `figures` to the runner's extension hook and keeps its answer."""

    figures: WindowFigures | None = None
    extra: list[int] = field(default_factory=list)

    def step(self, rate, on_interval=None, *, extend=None, **kwargs):
        if extend is not None and self.figures is not None:
            self.extra.append(extend(self.figures))
        return super().step(rate, on_interval, **kwargs)


def extension_asked(figures: WindowFigures) -> int:
    gen = Extending(p95s=[30.0], figures=figures)
    StepRunner(gen, PROFILE, criteria=CRITERIA, ramp=False, max_extra_s=6.0)(300.0)
    return gen.extra[0]


def test_an_undecided_window_far_under_the_slo_is_measured_longer() -> None:
    # 900 requests at 20 ms but for 45 at 25 ms, bunched in three of the five fifths: the
    # p95's interval is open above (the bunching widens it), and 9 s would decide it
    latencies = [20.0] * 900
    for i in (*range(0, 18), *range(180, 198), *range(720, 729)):
        latencies[i] = 25.0
    figures = window(latencies)
    assert figures.intervals["p95"].high is None
    assert extension_asked(figures) == 3


def test_an_undecided_window_clear_of_the_slo_is_not_measured_longer_for_nothing() -> None:
    # the same 45 slow requests all in the first fifth: bunched so tightly that even 9 s of
    # such a window would leave the interval open above, and 20 ms is clear of the SLO anyway
    latencies = [25.0 if i < 45 else 20.0 for i in range(900)]
    figures = window(latencies)
    assert figures.intervals["p95"].high is None
    assert extension_asked(figures) == 0


def test_an_undecided_window_near_the_slo_is_measured_longer_for_its_point_estimate() -> None:
    # p95 38 ms, 4.4% of the requests over the SLO, evenly spread: no affordable window
    # decides it, but its verdict is the point estimate's, which a longer window sharpens
    slow = {**{k * 10 + 9: 41.0 for k in range(8)}, **{k * 10 + 9: 38.0 for k in range(8, 18)}}
    latencies = [slow.get(i % 180, 20.0) for i in range(900)]  # the same in every fifth
    figures = window(latencies)
    ci = figures.intervals["p95"]
    assert figures.p95_ms == 38.0 and ci.low <= 40.0 < ci.high
    assert extension_asked(figures) == 3


def test_a_step_records_its_requests_within_the_slo_and_their_inflation() -> None:
    @dataclass
    class WithLatencies(Scripted):
        def step(self, rate, on_interval=None, **kwargs):
            base = super().step(rate, on_interval, **kwargs)
            return replace(
                base,
                latencies_ms=sorted([20.0] * 880 + [40.0] * 10 + [55.0] * 10),
                percentile_intervals={
                    "p95": PercentileInterval(20.0, 55.0, 1.7),
                    "p99": PercentileInterval(40.0, None, 2.5),
                },
            )

    step = measured(WithLatencies([30.0]), None)
    assert (step.within_slo, step.latency_inflation) == (890, 1.7)  # 40 ms is within a 40 SLO
    assert step.latency_ci_ms == [20.0, 55.0]

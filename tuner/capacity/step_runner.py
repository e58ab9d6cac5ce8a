"""One load step on a running generator, measured so that its verdict does not depend on the
path the search took to it.

- Drained: before a step's warm-up, arrivals stop until every request still in flight has
  completed (bounded by the request timeout; a drain that does not finish fails the step with
  that reason). A step that follows an overloaded one would otherwise inherit its backlog:
  against a FIFO target, 430 req/s passed when approached from below and failed when it came
  after 824 req/s.
- Warm: the first step after a restart is preceded by an unmeasured ramp (ramp.py): up to
  its rate, then held there until the server is steady or the ramp's bound is reached, so no
  measured window is the server's first traffic; the step records how long it took and
  how it ended. The ramp is drained like any step before the first one.
- Decided: the SLO percentile's 95% interval (tuner/percentile_ci.py) decides the
  latency criterion; a window whose interval holds the SLO is measured longer, up to
  `max_extra_s`, before its verdict is taken as it stands (flagged undecided). Extensions
  that decided nothing were a quarter of all step seconds on a slow host (bench/RESULTS.md),
  so a window whose percentile is clear of the SLO is not extended when the extra time could
  not decide it (`_futile`).
- Its own: a step that fails with a pause of the bench in its window (a collection in the
  service, say) longer than PAUSE_SHARE of the SLO is drained and measured once more, and the
  pause is recorded beside it; but only when the pause could have made the difference
  (pauses.hit_by: latency alone failed, by less than the pause lasted, or the host itself ran
  slow), and only for a stall (pauses.is_stall: a collection or the host's slow spell, not an
  event loop lagging behind its load). The stand-in's ~20-30 ms pauses are in nearly every
  window, and re-measuring every failure that had one cost 42 of 101 steps a second window in
  one benchmark run, two of which then passed.

The model server's metrics are scraped when the warm-up ends and when the window ends, so
the mean batch size covers the measured window only. Without a model server to ask (a test
target), `metrics` returns None and the batch size is unknown. Given the criteria, a window
that can no longer pass ends early (window_early_end.py).
"""

from __future__ import annotations

import bisect
import dataclasses
import time
from collections.abc import Callable
from typing import Any

from tuner.capacity.pauses import Pause, PauseLog, hit_by, is_stall, longest_by_process
from tuner.capacity.ramp import RampRecord, ramp_up
from tuner.capacity.step import StepCriteria, StepResult, Verdict, holds_slo, judge
from tuner.capacity.window_early_end import EarlyFail
from tuner.load import IntervalSample, LoadProfile
from tuner.load.window import WindowFigures
from tuner.measure.fixed_load import Measurer
from tuner.percentile_ci import requests_to_decide
from tuner.servers.metrics import ServerMetricsSnapshot, mean_batch_size

PAUSE_SHARE = 0.25  # a pause this long against the SLO makes a failed window worth another look
CLEAR_OF_SLO = 0.8  # a percentile under 0.8x the SLO, or over it / 0.8, is clear of it
DRAIN_SLACK_S = 2.0  # beyond the request timeout, for the last answers to be reported


class StepRunner:
    def __init__(
        self,
        generator: Any,
        profile: LoadProfile,
        metrics: Callable[[], ServerMetricsSnapshot | None] = lambda: None,
        measurer: Measurer | None = None,
        criteria: StepCriteria | None = None,
        *,
        max_extra_s: float = 0.0,
        ramp: bool = True,
        pauses: PauseLog | None = None,
    ) -> None:
        self.generator = generator
        self.criteria = criteria  # given: early end, intervals decide, pauses re-measured
        self.profile = profile
        self.metrics = metrics
        self.measurer = measurer
        self.max_extra_s = max_extra_s
        self.pauses = pauses
        self.samples: dict[int, list[IntervalSample]] = {}  # step -> its intervals
        self._ramp_pending = ramp
        self._steps = 0

    def __call__(self, rate: float) -> StepResult:
        started = time.monotonic()
        ramp: RampRecord | None = None
        if self._ramp_pending:
            self._ramp_pending = False
            ramp = ramp_up(self.generator, self.profile, rate, self.criteria)
        drain = self.generator.drain(self.profile.request_timeout_s + DRAIN_SLACK_S)
        drain_s = round(drain.waited_s, 3)
        if not drain.drained:
            return _with_ramp(self._not_drained(rate, drain, started), ramp)
        step = dataclasses.replace(self._measure(rate), drain_s=drain_s)
        hit = self._pause_hit(step)
        if hit is not None:
            drain = self.generator.drain(self.profile.request_timeout_s + DRAIN_SLACK_S)
            if drain.drained:
                step = dataclasses.replace(
                    self._measure(rate, replace=True), remeasured_because=hit, drain_s=drain_s
                )
        self._steps += 1
        return _with_ramp(dataclasses.replace(step, elapsed_s=time.monotonic() - started), ramp)

    def _not_drained(self, rate: float, drain: Any, started: float) -> StepResult:
        self.samples[len(self.samples)] = []
        self._steps += 1
        return StepResult(
            target_rps=rate,
            offered_rps=0.0,
            completed_rps=0.0,
            goodput_rps=0.0,
            p50_ms=None,
            p95_ms=None,
            p99_ms=None,
            error_rate=0.0,
            not_drained=(
                f"not drained: of {drain.in_flight} requests in flight when arrivals stopped, "
                f"some were still unanswered after {drain.waited_s:.1f} s"
            ),
            drain_s=round(drain.waited_s, 3),
            elapsed_s=time.monotonic() - started,
        )

    def _pause_hit(self, step: StepResult) -> str | None:
        c = self.criteria
        if c is None or self.pauses is None or step.remeasured_because:
            return None
        verdict = judge(step, c)
        if verdict.passed:
            return None
        excess = latency_excess_ms(step, verdict, c)
        return hit_by(step.stall_max_ms, PAUSE_SHARE * c.slo_ms, excess)

    def _measure(self, rate: float, replace: bool = False) -> StepResult:
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

        result = self.generator.step(
            rate,
            on_interval=on_interval,
            extend=window_extension(self.criteria, self.profile, self.max_extra_s, early),
            max_extra_s=self.max_extra_s,
        )
        after = self.metrics()
        if self.measurer is not None:
            self.measurer.check_bench(result)
        index = len(self.samples) - 1 if replace else len(self.samples)
        self.samples[index] = list(result.samples)
        before = scrapes.get("before")
        cpu = result.cpu_percent_by_pid
        pauses = self._window_pauses(result.window_mono)
        m = self.measurer
        offered = result.offered_rps_achieved
        measure_s = self.profile.measure_s
        ci = result.percentile_intervals.get(self.criteria.percentile) if self.criteria else None
        return StepResult(
            target_rps=rate,
            offered_rps=offered if offered is not None else rate,
            scheduled_rps=result.scheduled_rps,
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
            ended_early=early.reason if early is not None and result.stopped_early else None,
            generator_saturated=bool(result.generator_saturated),
            saturation_reason=result.saturation_reason,
            latency_ci_ms=ci.as_list() if ci is not None else None,
            extended_s=max(0.0, round(result.duration_s - measure_s, 3)),
            within_slo=(
                bisect.bisect_right(result.latencies_ms, self.criteria.slo_ms)
                if self.criteria and result.latencies_ms
                else None
            ),
            latency_inflation=ci.inflation if ci is not None else None,
            pause_max_ms=_rounded(longest_by_process(pauses)),
            stall_max_ms=_rounded(longest_by_process(p for p in pauses if is_stall(p))),
        )

    def _window_pauses(self, window: tuple[float, float] | None) -> list[Pause]:
        if self.pauses is None or window is None:
            return []
        return self.pauses.overlapping(*window)


def window_extension(
    criteria: StepCriteria | None,
    profile: LoadProfile,
    max_extra_s: float,
    early: EarlyFail | None = None,
) -> Callable[[WindowFigures], int]:
    """The rule a window is measured longer by, asked at the window's end: one more window's
    worth of intervals while the SLO percentile's interval holds the SLO, within
    `max_extra_s`, unless the extra time could not decide it (`_futile`). Public so that a
    simulated step (bench/interval_coverage.py) runs this rule, not a copy of it."""
    budget = {"left": round(max_extra_s / profile.interval_s)}

    def extend(figures: WindowFigures) -> int:
        if criteria is None or budget["left"] <= 0:
            return 0
        ci = figures.intervals.get(criteria.percentile)
        if ci is None:
            return 0
        if not holds_slo([ci.low, ci.high], criteria.slo_ms):
            return 0
        if _futile(figures, criteria, budget["left"] * profile.interval_s):
            return 0
        extra = min(budget["left"], profile.measure_intervals)
        budget["left"] -= extra
        if early is not None:
            early.measure_s += extra * profile.interval_s
        return extra

    return extend


def _futile(figures: WindowFigures, c: StepCriteria, extra_s: float) -> bool:
    """Is a longer window worth nothing here? When the SLO percentile is far from the SLO (its
    point estimate judges the step the same whatever more requests say) and, projected from
    the window's share of requests on each side of the SLO and its variance inflation, the
    rest of the extra time could not decide it either. Near the SLO a longer window still
    sharpens the point estimate an undecided verdict is judged by, so it is measured longer."""
    ci = figures.intervals.get(c.percentile)
    point = getattr(figures, f"{c.percentile}_ms")
    if ci is None or point is None or figures.duration_s <= 0:
        return False
    if CLEAR_OF_SLO * c.slo_ms <= point <= c.slo_ms / CLEAR_OF_SLO:
        return False
    needed = requests_to_decide(figures.latencies_ms, c.percent, c.slo_ms, ci.inflation)
    reachable = len(figures.latencies_ms) * (figures.duration_s + extra_s) / figures.duration_s
    return needed > reachable


def _rounded(longest: dict[str, float]) -> dict[str, float]:
    return {p: round(ms, 1) for p, ms in longest.items()}


def latency_excess_ms(step: StepResult, verdict: Verdict, c: StepCriteria) -> float | None:
    """How far the SLO percentile went over the SLO, when latency is all the step failed on
    (the rate offered, which the in-flight ceiling fails too; errors and goodput within
    budget); None otherwise."""
    latency = step.latency_ms(c.percentile)
    if latency is None or not verdict.achieved or step.error_rate > c.max_error_rate:
        return None
    if step.goodput_rps < c.min_goodput_ratio * step.offered_rps:
        return None
    return max(0.0, latency - c.slo_ms)


def _with_ramp(step: StepResult, ramp: RampRecord | None) -> StepResult:
    if ramp is None:
        return step
    return dataclasses.replace(step, ramp_s=ramp.seconds, ramp_outcome=ramp.outcome)

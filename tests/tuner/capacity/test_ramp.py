"""The ramp before a restarted server's first measured step (tuner/capacity/ramp.py) against
real HTTP stubs of known behaviour loaded by the real open-loop generator: a warm target's ramp
stays short, a target slow for its first seconds is held at the rate until it is warm, one
steadily too slow ends the ramp at once, one that never settles ends it at the bound. Every test
is `alone`: a ramp's end is measured on the clock, and a stalled neighbour blurs it. When an
interval counts as settled is in test_ramp_rules.py."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.stub_target import stub_target
from tests.tuner.capacity.test_known_capacity import CRITERIA, PROFILE, SERVICE_S
from tuner.capacity.ramp import (
    BOUND,
    FRACTIONS,
    OVER_SLO,
    SETTLED,
    bound_intervals,
    ramp_up,
)
from tuner.capacity.step import judge
from tuner.capacity.step_runner import StepRunner
from tuner.load import OpenLoopGenerator

pytestmark = pytest.mark.alone(seconds=9)
SHORT = replace(PROFILE, warmup_s=1.0, measure_s=2.0)
ATTEMPTS = 2  # a stall of the shared machine can fail one measured window


@pytest.mark.slow
def test_a_warm_target_ramp_is_short(tmp_path: Path) -> None:
    criteria = replace(CRITERIA, slo_ms=100.0)  # warm p95 ~10 ms: a stall does not decide it
    seen = []
    for attempt in range(ATTEMPTS):  # a stall in an interval at the rate holds it longer
        with (
            stub_target("--service-s", str(SERVICE_S)) as stub,
            OpenLoopGenerator(SHORT, stub.url, tmp_path / f"a{attempt}") as generator,
        ):
            ramp = ramp_up(generator, SHORT, 80.0, criteria)
            rates = [round(r.samples[0].target_rps or 0.0, 1) for r in generator.steps]
        seen.append(ramp)
        if ramp.outcome == SETTLED and ramp.intervals_at_rate <= 2:
            break
    assert ramp.outcome == SETTLED, seen
    assert ramp.intervals_at_rate <= 2, seen  # settled at its first interval at the rate, or next
    assert rates == [80.0 * f for f in FRACTIONS] + [80.0]


@pytest.mark.slow
def test_a_target_slow_after_its_start_is_held_until_warm(tmp_path: Path) -> None:
    # +300 ms per request for 2.5 s after its first one: the fractions (~2.2 s) are all cold,
    # the rate's first interval is partly cold, the next one warm but much faster than it
    cold = ("--service-s", str(SERVICE_S), "--cold-s", "2.5", "--cold-extra-s", "0.3")
    criteria = replace(CRITERIA, slo_ms=150.0)
    profile = replace(PROFILE, warmup_s=2.0, measure_s=3.0)
    seen = []
    for attempt in range(ATTEMPTS):
        with (
            stub_target(*cold) as stub,
            OpenLoopGenerator(profile, stub.url, tmp_path / f"a{attempt}") as gen,
        ):
            step = StepRunner(gen, profile, criteria=criteria)(100.0)
            held = len(gen.steps[len(FRACTIONS)].samples)
        seen.append((step.ramp_outcome, held, step.p95_ms))
        if step.ramp_outcome == SETTLED and judge(step, criteria).passed:
            break
    assert step.ramp_outcome == SETTLED and step.ramp_s is not None, seen
    assert 2 <= held < bound_intervals(profile), seen
    assert judge(step, criteria).passed, seen


@pytest.mark.slow
def test_a_target_steadily_too_slow_ends_the_ramp_at_once(tmp_path: Path) -> None:
    # always 80 ms over its service time: never within a 30 ms SLO, and not warming either
    slow = ("--service-s", str(SERVICE_S), "--cold-s", "3600", "--cold-extra-s", "0.08")
    with stub_target(*slow) as stub, OpenLoopGenerator(SHORT, stub.url, tmp_path) as gen:
        step = StepRunner(gen, SHORT, criteria=CRITERIA)(40.0)
        held = len(gen.steps[len(FRACTIONS)].samples)
    # two intervals decide; a third may be reported before the decision reaches the generator
    # on a loaded machine, still well short of the bound
    assert step.ramp_outcome == OVER_SLO and 2 <= held <= 3 < bound_intervals(SHORT), held
    assert step.drain_s is not None  # the ramp is drained before the step
    verdict = judge(step, CRITERIA)  # the measured step decides, not the ramp
    assert not verdict.passed and "> SLO" in (verdict.reason or ""), verdict


@pytest.mark.slow
def test_a_target_that_never_settles_ends_the_ramp_at_its_bound(tmp_path: Path) -> None:
    # every answer a 500: answering, never within the error budget; the SLO far above any
    # answer's latency, so a loaded machine cannot make it "steadily over the SLO" instead
    criteria = replace(CRITERIA, slo_ms=2000.0)
    with (
        stub_target("--plain500-every", "1") as stub,
        OpenLoopGenerator(SHORT, stub.url, tmp_path) as gen,
    ):
        step = StepRunner(gen, SHORT, criteria=criteria)(40.0)
        held = len(gen.steps[len(FRACTIONS)].samples)
    # never settled nor steadily over the SLO: held to the bound (an interval reported late on
    # a loaded machine may be missing from the count, never one more)
    assert step.ramp_outcome == BOUND and step.ramp_s is not None, step.ramp_outcome
    assert 0 < held <= bound_intervals(SHORT)
    verdict = judge(step, criteria)
    assert not verdict.passed and "error rate" in (verdict.reason or ""), verdict

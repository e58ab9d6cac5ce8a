"""The probe after a restart: a target slow in its first seconds after a start (a restarted
server) must not fail the probe the first step after a restart is, because an unmeasured ramp
comes before it, held at the rate until the target is steady (tuner/capacity/ramp.py, tested on
its own in test_ramp.py). Against a real HTTP stub loaded by the real open-loop generator."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.stub_target import stub_target
from tests.tuner.capacity.test_known_capacity import CRITERIA, PROFILE, SERVICE_S, SETTINGS
from tuner.capacity import search
from tuner.capacity.step_runner import StepRunner
from tuner.load import OpenLoopGenerator

pytestmark = pytest.mark.slow


# The cold backlog drains at the CPU the stub gets: a neighbour slows it.
@pytest.mark.alone(seconds=21)
def test_a_target_slow_after_its_start_keeps_its_probe(tmp_path: Path) -> None:
    # Cold: +300 ms per request for 2.5 s after its first one; warm, p95 is ~15 ms, so a
    # generous SLO keeps a loaded machine's stalls from deciding the probe either way.
    cold = ("--service-s", str(SERVICE_S), "--cold-s", "2.5", "--cold-extra-s", "0.3")
    criteria = replace(CRITERIA, slo_ms=150.0)
    profile = replace(PROFILE, warmup_s=2.0, measure_s=3.0)
    settings = replace(SETTINGS, resolution=0.1, max_steps=2)
    with stub_target(*cold) as stub, OpenLoopGenerator(profile, stub.url, tmp_path) as gen:
        # the probe of a configuration identical to an incumbent of 110 req/s: 100 req/s
        outcome = search(
            StepRunner(gen, profile, criteria=criteria),
            settings,
            criteria,
            start_rps=100.0,
            incumbent_rps=110.0,
        )
    assert outcome.pruned_because is None, outcome.pruned_because
    assert outcome.points[0].verdict.passed
    assert outcome.points[0].result.ramp_outcome == "settled"  # held at the rate until warm
    # the target is really cold: without the ramp, the first window fails
    with (
        stub_target(*cold) as stub,
        OpenLoopGenerator(profile, stub.url, tmp_path / "cold") as gen,
    ):
        unramped = StepRunner(gen, profile, criteria=criteria, ramp=False)(100.0)
    assert unramped.p95_ms is not None and unramped.p95_ms > criteria.slo_ms

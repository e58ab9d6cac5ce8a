"""Steps whose verdict does not depend on the path to them, against real HTTP stubs of known
behaviour loaded by the real open-loop generator (tests/support/stub_target.py).

A FIFO target (M/D/1, 5 ms per request) carries its backlog from one step to the next: an
overloaded step leaves up to max_in_flight requests queued (512 x 5 ms = 2.6 s of work), more
than a lower step's warm-up clears. Each step starts drained, so the lower step is measured as
if it came first, and a search that comes at the capacity from above lands in the same band as
one from below.

Both are `alone`: the verdicts are latencies against an SLO, which depend on the CPU the stub
and the generator get. The first step after a restart is in test_probe_after_restart.py.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from tests.support.stub_target import stub_target
from tests.tuner.capacity.queue_model import sojourn_p95_s
from tests.tuner.capacity.test_known_capacity import CRITERIA, PROFILE, SERVICE_S, SETTINGS, in_band
from tuner.capacity import search
from tuner.capacity.step_runner import StepRunner
from tuner.load import OpenLoopGenerator

pytestmark = pytest.mark.slow
DEEP = replace(PROFILE, max_in_flight=512, warmup_s=1.0, measure_s=3.0)
ATTEMPTS = 2  # a stall of the shared machine can fail one search's step


@pytest.mark.alone(seconds=17)
def test_a_step_after_an_overload_is_measured_as_if_it_came_first(tmp_path: Path) -> None:
    seen = []
    for attempt in range(ATTEMPTS):
        with (
            stub_target("--service-s", str(SERVICE_S)) as stub,
            OpenLoopGenerator(DEEP, stub.url, tmp_path / f"a{attempt}") as generator,
        ):
            runner = StepRunner(generator, DEEP, criteria=CRITERIA)
            overloaded = runner(400.0)  # twice the capacity: the queue fills to the ceiling
            after = runner(100.0)  # half the capacity: p95 ~ 13 ms + the round trip
        assert overloaded.in_flight_limit_hit or (overloaded.p95_ms or 0) > CRITERIA.slo_ms
        assert after.drain_s is not None and after.drain_s > 0.3  # the backlog's own length
        seen.append((after.p95_ms, after.drain_s))
        if after.p95_ms is not None and after.p95_ms < CRITERIA.slo_ms:
            break
    assert after.p95_ms is not None and after.p95_ms < CRITERIA.slo_ms, seen
    # the tally that pools steps: its p95 under the SLO, so 95% or more of its requests
    assert after.within_slo is not None and 0.95 * after.requests <= after.within_slo
    assert after.within_slo <= after.requests and (after.latency_inflation or 0) >= 1.0


@pytest.mark.alone(seconds=37)
def test_a_search_from_above_lands_in_the_md1_band(tmp_path: Path) -> None:
    attempts = []
    for attempt in range(ATTEMPTS):
        with (
            stub_target("--service-s", str(SERVICE_S)) as stub,
            OpenLoopGenerator(DEEP, stub.url, tmp_path / f"a{attempt}") as generator,
        ):
            runner = StepRunner(generator, DEEP, criteria=CRITERIA)
            light = runner(20.0)
            overhead_s = max(0.0, light.p95_ms / 1000 - sojourn_p95_s(20.0, SERVICE_S))
            # 380 req/s first: overloaded, then every lower step follows a failed one
            outcome = search(runner, SETTINGS, CRITERIA, start_rps=380.0)
        ok, detail = in_band(outcome, overhead_s)
        attempts.append(detail)
        if ok:
            break
    assert ok, attempts
    assert outcome.points[0].result.target_rps == 380.0
    assert not outcome.points[0].verdict.passed

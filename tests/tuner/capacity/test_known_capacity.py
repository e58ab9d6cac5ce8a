"""The search against a target whose capacity is known: a real HTTP stub that serves one
request at a time, in order, each in exactly SERVICE_S (an M/D/1 queue under the generator's
Poisson arrivals), loaded by the real open-loop generator.

The expected capacity comes from the queue model, not from a past run: the rate at which
the sojourn time's p95 meets the SLO (seeded simulation, queue_model.py). Measurement noise
is allowed for honestly and by the same model: one window holds a few hundred requests, so
its p95 scatters; the band is the rates at which a window breaks the SLO with probability
5% and 95%, widened by the search's resolution. The loopback round trip (HTTP, Locust) adds
to every latency; it is measured at light load and taken off the SLO for the lower bound.
A search that is wrong by more than the queue's own noise fails this test.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tuner.capacity.queue_model import rate_with_fail_probability, sojourn_p95_s
from tuner.capacity import SearchSettings, StepCriteria, search
from tuner.capacity.measure import StepRunner
from tuner.load import LoadProfile, OpenLoopGenerator
from tuner.process import free_port

pytestmark = pytest.mark.slow
STUB = Path(__file__).parents[1] / "load" / "stub_predict_service.py"
SERVICE_S = 0.005  # capacity 200 req/s
SLO_MS = 30.0  # p95; the M/D/1 model meets it near 148 req/s
WINDOW_S = 6.0
RESOLUTION = 0.05


@contextlib.contextmanager
def fifo_stub() -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(STUB), "--port", str(port), "--service-s", str(SERVICE_S)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/stats", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"stub did not start: {proc.stderr.read()!r}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_the_search_finds_the_md1_capacity_within_its_noise(tmp_path: Path) -> None:
    profile = LoadProfile(
        arrival="poisson", max_in_flight=64, warmup_s=2.0, measure_s=WINDOW_S, interval_s=1.0
    )
    criteria = StepCriteria(
        percentile="p95", slo_ms=SLO_MS, max_error_rate=0.01, min_goodput_ratio=0.95
    )
    settings = SearchSettings(
        min_rps=10.0,
        max_rps=400.0,
        resolution=RESOLUTION,
        max_steps=10,
        max_trial_s=600.0,
        step_s=2.0 + WINDOW_S,
        growth=2.0,
        low_check_fraction=0.0,
    )
    with fifo_stub() as url, OpenLoopGenerator(profile, url, tmp_path) as generator:
        # as in a trial: failing windows end early, and a trickle drains the backlog after them
        runner = StepRunner(generator, profile, criteria=criteria, drain_rps=settings.min_rps)
        light = runner(20.0)  # 10% load: almost no queueing, so p95 - model = the round trip
        overhead_s = max(0.0, light.p95_ms / 1000 - sojourn_p95_s(20.0, SERVICE_S))
        outcome = search(runner, settings, criteria, start_rps=100.0)

    slo_s = SLO_MS / 1000
    low = rate_with_fail_probability(0.05, SERVICE_S, slo_s - 2 * overhead_s, WINDOW_S)
    high = rate_with_fail_probability(0.95, SERVICE_S, slo_s, WINDOW_S)
    curve = [(round(p.result.target_rps, 1), p.verdict.passed) for p in outcome.points]
    assert outcome.capacity is not None, curve
    found = outcome.capacity.result.target_rps
    assert low / (1 + RESOLUTION) <= found <= high, (found, low, high, overhead_s, curve)
    # capacity is goodput: what was served, which keeps up with what was offered
    assert outcome.capacity_rps == pytest.approx(found, rel=0.1)
    assert outcome.stop_reason == "resolution_reached", outcome.stop_detail
    failing_above = [r for r, ok in curve if not ok and r > found]
    assert min(failing_above) / found <= 1 + RESOLUTION + 1e-9

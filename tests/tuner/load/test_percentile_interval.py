"""The percentile's 95% interval covers the true percentile about as often as it says, in
simulation: independent latencies (where order statistics are exact) and an M/D/1 queue's
correlated sojourn times (where the batch-means widening has to earn its keep)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tuner.capacity.queue_model import sojourns_s
from tuner.load.percentile_ci import percentile_interval

WINDOWS = 300


def coverage(windows: np.ndarray, true: float, percent: float) -> float:
    hits = 0
    for window in windows:
        ci = percentile_interval(list(window), percent)
        low = -np.inf if ci.low is None else ci.low
        high = np.inf if ci.high is None else ci.high
        hits += low <= true <= high
    return hits / len(windows)


@pytest.mark.parametrize("percent", [50.0, 95.0, 99.0])
def test_independent_latencies_are_covered_at_the_nominal_rate(percent: float) -> None:
    rng = np.random.default_rng(3)
    true = float(-np.log(1 - percent / 100) * 10.0)  # exponential, mean 10 ms
    windows = rng.exponential(10.0, size=(WINDOWS, 1000))
    assert coverage(windows, true, percent) >= 0.93


@pytest.mark.parametrize(("utilisation", "least"), [(0.3, 0.93), (0.6, 0.9)])
def test_a_queues_correlated_latencies_are_covered(utilisation: float, least: float) -> None:
    service_s = 0.005
    rate = utilisation / service_s
    true = float(np.percentile(sojourns_s(rate, service_s, 400_000, 7)[2_000:], 95))
    per_window = int(rate * 3)  # a 3-s window's requests
    chain = sojourns_s(rate, service_s, 2_000 + WINDOWS * per_window, 11)[2_000:]
    assert coverage(chain.reshape(WINDOWS, per_window), true, 95.0) >= least


def test_the_widening_follows_the_correlation() -> None:
    rng = np.random.default_rng(5)
    independent = percentile_interval(list(rng.exponential(10.0, 3000)), 95.0)
    bursts = np.repeat(rng.exponential(10.0, 300), 10)  # runs of ten equal latencies
    correlated = percentile_interval(list(bursts), 95.0)
    assert independent.inflation < 2.5 < correlated.inflation


def test_too_few_requests_leave_the_interval_open() -> None:
    ci = percentile_interval([1.0, 2.0, 3.0, 4.0, 5.0], 95.0)
    assert ci.high is None and percentile_interval([], 95.0) is None

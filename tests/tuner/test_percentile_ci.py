"""The percentile's 95% interval covers the true percentile about as often as it says, in
simulation: independent latencies (where order statistics are exact) and an M/D/1 queue's
correlated sojourn times (where the batch-means widening has to earn its keep)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tuner.capacity.queue_model import sojourns_s
from tuner.percentile_ci import (
    SloTally,
    percentile_interval,
    pooled_pass,
    requests_to_decide,
)

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


def even_window(n: int, slow_ms: float = 35.0) -> list[float]:
    """One request in twenty at `slow_ms`, the rest at 20 ms, evenly spread: 5% above 20 ms
    in every batch, so no variance inflation."""
    return [slow_ms if i % 20 == 19 else 20.0 for i in range(n)]


def test_requests_to_decide_agrees_with_when_the_interval_decides() -> None:
    needed = requests_to_decide(sorted(even_window(100)), 95.0, 40.0, vif=1.0)
    # all under the SLO: n * 5% must outgrow t * sqrt(n * 0.95 * 0.05), t = 2.776
    assert needed == pytest.approx((2.776445 * (0.95 * 0.05) ** 0.5 / 0.05) ** 2)
    short = percentile_interval(even_window(int(needed / 2)), 95.0)
    long = percentile_interval(even_window(int(needed * 2)), 95.0)
    assert short is not None and short.high is None  # open above: too few requests
    assert long is not None and long.high is not None and long.high < 40.0


def test_requests_to_decide_grows_with_the_inflation_and_near_the_threshold() -> None:
    window = sorted(even_window(1000))
    far = requests_to_decide(window, 95.0, 40.0, vif=1.0)
    assert requests_to_decide(window, 95.0, 40.0, vif=12.0) == pytest.approx(12 * far)
    # at 30 ms exactly 95% of the requests lie under the threshold: the percentile sits at
    # it, and no window of any length decides
    assert requests_to_decide(window, 95.0, 30.0, vif=1.0) == float("inf")
    over = sorted([50.0 if i % 10 == 9 else 20.0 for i in range(1000)])  # 10% over 40 ms
    assert requests_to_decide(over, 95.0, 40.0, vif=1.0) == pytest.approx(far)
    assert requests_to_decide([], 95.0, 40.0, vif=1.0) == float("inf")


def test_one_windows_tally_passes_exactly_when_its_interval_lies_under_the_slo() -> None:
    rng = np.random.default_rng(13)
    agreed = decided = 0
    for n in (60, 200, 600):
        for slo in (20.0, 30.0, 35.0, 45.0):
            for _ in range(20):
                window = list(rng.exponential(10.0, n))
                ci = percentile_interval(window, 95.0)
                tally = SloTally(n, sum(1 for x in window if x <= slo), ci.inflation)
                under = ci.high is not None and ci.high <= slo
                agreed += pooled_pass([tally], 95.0) == under
                decided += under
    assert agreed == 240 and 0 < decided < 240


def test_windows_pooled_pass_where_each_alone_cannot() -> None:
    # all within the SLO: one window of 100 needs 102 within it to pass, two of them 200
    alone = SloTally(100, 100, 1.0)
    assert not pooled_pass([alone], 95.0)
    assert pooled_pass([alone, alone], 95.0)
    assert not pooled_pass([SloTally(100, 100, 3.0)] * 2, 95.0)  # burstier: more are needed
    assert not pooled_pass([], 95.0)

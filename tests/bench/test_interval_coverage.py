"""The coverage benchmark's parts: its simulated step judges like a measured one, and its
summary counts an interval that misses the true capacity on the side it misses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.interval_coverage import (
    Queue,
    QueueStep,
    md1_rate_at_percentile,
    md1_sojourn_cdf,
    run,
    summarise,
)
from tests.tuner.capacity.queue_model import WARMUP_CUSTOMERS, sojourns_s
from tuner.capacity.interval import CapacityInterval
from tuner.capacity.search import SearchOutcome
from tuner.capacity.settings import load_profile, search_settings, step_criteria
from tuner.capacity.step import judge
from tuner.config import load_config

ROOT = Path(__file__).resolve().parents[2]


def test_erlangs_formula_agrees_with_a_long_simulation_of_the_queue() -> None:
    # no wait below one service time; the mean-based check: rho = 0.5 waits under 5 ms
    assert md1_sojourn_cdf(0.004, 100.0, 0.005) == 0.0
    assert md1_sojourn_cdf(0.005, 100.0, 0.005) == pytest.approx(0.5)  # P(no wait) = 1 - rho
    rate = md1_rate_at_percentile(0.04, 0.005)
    simulated = sojourns_s(rate, 0.005, 400_000, seed=7)[WARMUP_CUSTOMERS:]
    assert float(np.mean(simulated <= 0.04)) == pytest.approx(0.95, abs=0.004)


def test_the_m_m_1_capacity_agrees_with_a_long_simulation_of_its_queue() -> None:
    queue = Queue("mm1", 0.002)
    rate = queue.capacity(0.04, 95.0)
    assert rate == pytest.approx(500 - np.log(20) / 0.04)
    simulated = queue.latencies_s(rate, 400_000, seed=7)[WARMUP_CUSTOMERS:]
    assert float(np.mean(simulated <= 0.04)) == pytest.approx(0.95, abs=0.004)
    assert Queue("md1", 0.005).capacity(0.04, 95.0) == md1_rate_at_percentile(0.04, 0.005)


def queue_step(seed: int = 1) -> QueueStep:
    config = load_config(ROOT / "tuner.toml")
    return QueueStep(
        Queue("md1", 0.005),
        step_criteria(config),
        search_settings(config),
        load_profile(config),  # tuner.toml: 1-s warm-up, 3-s window, 1-s intervals
        seed=seed,
    )


def test_a_simulated_step_passes_far_below_the_knee_and_fails_past_it() -> None:
    step = queue_step()
    truth = step.queue.capacity(step.criteria.slo_ms / 1000, 95.0)
    low, high = step(0.4 * truth), step(1.15 * truth)
    assert judge(low, step.criteria).outcome == "pass"
    assert judge(high, step.criteria).outcome == "fail"
    # 64 req/s: too few requests in 3 s for the rank test, so the window was measured longer
    assert low.duration_s > 3.0 and low.requests == low.duration_s * round(0.4 * truth)
    assert low.elapsed_s > low.duration_s + 1.0  # warm-up and overhead count against the budget


def test_a_step_at_the_knee_is_measured_longer_while_undecided() -> None:
    truth = md1_rate_at_percentile(0.04, 0.005)
    durations = [queue_step(seed)(truth).duration_s for seed in range(0, 40_000, 1000)]
    assert max(durations) > 3.0  # some windows at the crossing itself stay undecided
    assert max(durations) <= 9.0  # never past step_extra_s


def _outcome(low: float, high: float | None, estimate: float) -> SearchOutcome:
    outcome = SearchOutcome(elapsed_s=30.0)
    outcome.interval = CapacityInterval(estimate, low, high)
    return outcome


def test_the_summary_counts_misses_on_their_side_and_open_ends() -> None:
    outcomes = [
        _outcome(90.0, 110.0, 100.0),  # holds the truth (100)
        _outcome(102.0, 120.0, 110.0),  # low end above it
        _outcome(80.0, 95.0, 90.0),  # high end below it
        _outcome(0.0, 104.0, 99.0),  # open below, holds it
        SearchOutcome(elapsed_s=10.0),  # no capacity at all
    ]
    s = summarise(outcomes, truth=100.0, precision=0.1)
    assert s["searches"] == 5 and s["without_capacity"] == 1
    assert s["coverage"] == 0.5
    assert (s["low_end_above_truth"], s["high_end_below_truth"], s["open_below"]) == (1, 1, 1)
    assert s["within_precision"] == 3  # +-10%, 8.2% and 8.3%; the open one has no width
    assert s["estimate_error_median"] == pytest.approx(-0.005)


def test_a_short_run_reports_every_start_against_the_computed_capacity() -> None:
    figures = run(2, Queue("md1", 0.005), ROOT / "tuner.toml")
    assert figures["queue"]["true_capacity_rps"] == pytest.approx(161.92, abs=0.01)
    assert set(figures["starts"]) == {"climb", "0.9", "1.2", "1.5", "3.0"}
    assert all(s["searches"] == 2 for s in figures["starts"].values())
    assert figures["settings"]["precision"] == 0.05

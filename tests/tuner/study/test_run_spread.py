"""The run-to-run spread: estimated from repeated runs whatever their levels, and a search's
interval widened by it covers a capacity that moves between runs at its nominal rate, where
the search's own interval alone does not; the confirmation pass records it."""

from __future__ import annotations

import html
import math
import random
from pathlib import Path

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.tuner.study.test_confirm_optimize_scripted import confirmed, optimize_config
from tests.tuner.study.test_interleaved_confirmation import noisy
from tuner.review.dashboard import study_note
from tuner.review.data import review_data
from tuner.review.page import _table
from tuner.review.show import show
from tuner.storage import SampleStore
from tuner.study.ratios import ratio
from tuner.study.run import open_study, optimize
from tuner.study.run_spread import (
    RUN_SPREAD_ATTR,
    RunSpread,
    pooled,
    stored_run_spread,
    t_975,
    widen,
)


def test_the_spread_is_pooled_about_each_configuration_s_own_level() -> None:
    rng = random.Random(1)
    levels = [300.0, 900.0, 2500.0]  # far apart: only the scatter about each counts
    groups = [[level * math.exp(rng.gauss(0, 0.04)) for _ in range(5)] for level in levels]
    spread = pooled(groups)
    assert spread is not None and (spread.configurations, spread.runs, spread.dof) == (3, 15, 12)
    assert 0.025 < spread.cv < 0.06
    assert pooled([[500.0, 510.0], [800.0]]) is None  # one degree of freedom says too little
    assert pooled([[500.0, 0.0, 510.0, 520.0]]).runs == 3  # no capacity is no run


def test_a_widened_interval_covers_a_capacity_that_moves_between_runs() -> None:
    """Each run's true capacity moves by 4% (sd); its search sees it to +-3% (95%). The
    search's own interval then holds the configuration's level far less often than 95%; widened
    by a spread estimated from 12 other runs, it holds it about as often as it says."""
    rng = random.Random(7)
    level, between, within_half = 1000.0, 0.04, 0.03
    own = widened = 0
    trials = 2000
    for _ in range(trials):
        history = [[level * math.exp(rng.gauss(0, between)) for _ in range(4)] for _ in range(4)]
        spread = pooled(history)
        true_run = level * math.exp(rng.gauss(0, between))
        estimate = true_run * (1 + rng.gauss(0, within_half / 1.96))
        low, high = estimate * (1 - within_half), estimate * (1 + within_half)
        own += low <= level <= high
        w_low, w_high = widen(estimate, low, high, spread)
        widened += w_low <= level <= w_high
    assert own / trials < 0.75
    assert 0.92 <= widened / trials <= 0.995


def test_widening_keeps_an_open_interval_open_and_needs_a_spread() -> None:
    spread = RunSpread(cv=0.05, configurations=3, runs=15, dof=12)
    low, high = widen(1000.0, 950.0, None, spread)
    assert high is None and low < 950.0
    assert widen(1000.0, 950.0, 1050.0, None) == (950.0, 1050.0)
    low, high = widen(1000.0, 1000.0, 1000.0, spread)  # a point: the spread alone
    assert math.isclose(high - 1000.0, 1000.0 * t_975(12) * 0.05)
    assert math.isclose(1000.0 - low, high - 1000.0)


def test_t_quantiles_match_the_table() -> None:
    for dof, exact in [(1, 12.706), (3, 3.182), (4, 2.776), (6, 2.447), (12, 2.179), (60, 2.000)]:
        assert math.isclose(t_975(dof), exact, rel_tol=0.003)


def test_the_confirmation_pass_records_the_study_s_spread(tmp_path: Path) -> None:
    study, _, _, lines = confirmed(tmp_path, noisy(300.0, 400.0), repeats=5)
    spread = stored_run_spread(study)
    assert spread is not None and spread == RunSpread(**study.user_attrs[RUN_SPREAD_ATTR])
    assert spread.configurations == 2 and spread.runs == 12  # own run + 5 rounds, each
    assert 0.01 < spread.cv < 0.04  # uniform +-4%: sd 2.3%
    assert any(line.startswith("run-to-run spread") for line in lines)


def test_show_widens_each_capacity_by_the_study_s_spread(tmp_path: Path) -> None:
    rng = random.Random(3)

    def knee(batching, flags, rate) -> Served:
        capacity = (40.0 if batching is None else 5.0 * batching.max_batch_size) * rng.uniform(
            0.9, 1.1
        )
        return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)

    config = optimize_config(tmp_path, 3)
    config.load.mode = "capacity"
    config.confirm.repeats = 3
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    study = open_study(config)
    spread = stored_run_spread(study)
    assert spread is not None
    table = show(study)
    assert table.splitlines()[-1].startswith(
        f"capacity intervals: each search's 95% interval widened by the study's {spread.text()}"
    )
    checked = 0
    for t in study.trials:
        ci = t.user_attrs.get("capacity_ci_rps")
        if not ci or ci[1] is None or t.state.name != "COMPLETE":
            continue
        low, high = widen(t.user_attrs["rps"], *ci, spread)
        assert low < ci[0] and high > ci[1]
        assert f"[{low:.0f}-{high:.0f}]" in table
        checked += 1
    assert checked >= 2
    # the dashboard's note and the report say the same under their tables
    assert (
        f"Capacity intervals: each search's 95% interval widened by the study's {spread.text()}"
        in (study_note(study, "p95"))
    )
    with SampleStore(config.study.storage) as samples:
        data = review_data(study, samples, "p95", config.objective.slo_ms)
    assert data.table_note == table.splitlines()[-1]
    assert f'<p class="table-note">{html.escape(data.table_note)}</p>' in _table(data)


def test_with_too_few_rounds_the_spread_gives_the_ratio_its_interval() -> None:
    spread = RunSpread(cv=0.02, configurations=4, runs=8, dof=4)
    a = [{"rps": 2871.0, "round": None}, {"rps": 2785.0, "round": 0}]
    b = [{"rps": 2991.0, "round": None}, {"rps": 2756.0, "round": 0}]
    r = ratio(a, b, spread=spread)
    half = t_975(4) * 0.02 * math.sqrt(1 / 2 + 1 / 2)
    assert math.isclose(r.low, r.point * math.exp(-half))
    assert math.isclose(r.high, r.point * math.exp(half))
    assert r.tied and r.how == "from the study's run-to-run spread (2.0%)"
    far = ratio([{"rps": 2800.0, "round": 0}] * 2, [{"rps": 900.0, "round": 0}] * 2, spread=spread)
    assert not far.tied and far.low > 2.9

"""The benchmark's coverage figure: one search's interval against the other searches' median,
as recorded and widened by a run-to-run spread; and how much of the searches' spread the
machine's recorded speed explains."""

from __future__ import annotations

import pytest

from bench.capacity_precision import holds_others_median, machine_vs_capacity
from tuner.study.run_spread import RunSpread


def test_coverage_counts_each_search_against_the_median_of_the_others() -> None:
    capacities = [1000.0, 1010.0, 990.0, 1100.0]
    cis = [[980.0, 1020.0], [1000.0, 1020.0], [985.0, 995.0], [1080.0, 1120.0]]
    # medians of the others: 1010, 1000, 1010, 1000 -> held by the first two
    assert holds_others_median(capacities, cis) == 0.5
    wide = RunSpread(cv=0.04, configurations=2, runs=10, dof=8)  # +-9.2%
    assert holds_others_median(capacities, cis, wide) == 1.0
    assert holds_others_median([1000.0], [[900.0, 1100.0]]) is None  # no others
    assert holds_others_median([1000.0, 1500.0], [[900.0, None], None]) == 1.0  # open above


def test_the_machine_s_speed_is_set_against_each_capacity_over_its_configuration_s_median() -> None:
    # two configurations at different levels; within each, slower memory, less capacity
    # (exactly inversely), while the loop moves at random
    def search(capacity: float, loop_ms: float, memory_ms: float) -> tuple[float, dict]:
        return capacity, {"host_loop_ms": loop_ms, "host_memory_ms": memory_ms}

    groups = [
        [search(200.0, 4.0, 0.30), search(240.0, 4.1, 0.25), search(160.0, 4.0, 0.375)],
        [search(400.0, 4.1, 0.30), search(480.0, 4.0, 0.25), search(320.0, 4.1, 0.375)],
    ]
    r = machine_vs_capacity(groups)
    assert r["host_memory_ms"] == pytest.approx(-1.0)
    assert abs(r["host_loop_ms"]) < 0.5
    older = [[(200.0, {}), (240.0, {}), (160.0, {"host_memory_ms": 0.3})]]  # not recorded
    assert machine_vs_capacity(older) == {"host_loop_ms": None, "host_memory_ms": None}

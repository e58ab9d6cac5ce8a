"""The benchmark's coverage figure: one search's interval against the other searches' median,
as recorded and widened by a run-to-run spread."""

from __future__ import annotations

from bench.capacity_precision import holds_others_median
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

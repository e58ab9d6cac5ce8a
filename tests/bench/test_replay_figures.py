"""The replay's per-sampler figures from its seeded studies."""

from __future__ import annotations

import math

from bench.replay_figures import Run, report_lines, summarize


def run(fraction: float, tied: bool, trials: float = 5.0) -> Run:
    return Run(trials, 60.0 * trials, 400.0, fraction, tied)


def test_a_winner_tied_only_through_a_wide_interval_is_not_within_5pct() -> None:
    runs = [run(1.0, True), run(0.96, True), run(0.80, True), run(0.949, False, math.inf)]
    figures = summarize(runs, trials=15)
    assert figures["winner_best_or_tied"] == 0.75
    assert figures["winner_within_5pct"] == 0.5
    assert figures["trials_to_within_5pct"]["reached"] == 3


def test_the_report_line_names_both_shares() -> None:
    figures = summarize([run(1.0, True), run(0.9, True)], trials=15)
    (line,) = report_lines({"samplers": {"quick": figures}})
    assert "best or tied in 100%" in line and "within 5% of it in 50%" in line

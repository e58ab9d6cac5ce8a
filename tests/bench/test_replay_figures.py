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
    line = report_lines({"samplers": {"quick": figures}})[0]
    assert "best or tied in 100%" in line and "within 5% of it in 50%" in line


def test_within_the_noise_is_counted_beside_within_5pct() -> None:
    runs = [
        Run(5.0, 300.0, 400.0, 0.91, True, 3.0, True),
        Run(math.inf, math.inf, 400.0, 0.80, False),
    ]
    figures = summarize(runs, trials=15)
    assert figures["trials_to_within_noise"] == {"median": 3.0, "p90": None, "reached": 1}
    assert figures["winner_within_noise"] == 0.5
    lines = report_lines(
        {"samplers": {"tpe": figures}, "surface": {"repeat_cv": 0.09, "noise_floor": 0.117}}
    )
    assert "reached in 1/2" in lines[1] and "9.0%" in lines[-1] and "11.7%" in lines[-1]


def test_the_report_says_how_often_a_searchs_interval_holds_its_repeat() -> None:
    surface = {"repeat_cv": 0.09, "noise_floor": 0.117, "interval_holds_repeat": 0.745}
    lines = report_lines({"samplers": {}, "surface": surface})
    assert "holds another search of its point in 74% of pairs" in lines[-1]
    assert not any("holds" in line for line in report_lines({"samplers": {}, "surface": {}}))

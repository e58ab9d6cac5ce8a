"""The replay's figures: per sampler, over its seeded studies (bench/replay.py)."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

WITHIN = 0.05  # "close to the best": within 5% of the surface's best capacity


@dataclass
class Run:
    """One seeded study on the surface."""

    trials_to_within: float  # math.inf: never within 5% of the best
    seconds_to_within: float
    seconds_total: float
    winner_fraction: float
    winner_best_or_tied: bool
    trials_to_within_noise: float = math.inf  # within the surface's own noise of the best
    winner_within_noise: bool = False


def percentile(values: list[float], q: float) -> float | None:
    """The q-quantile (nearest rank); None when it is a study that never got there."""
    ordered = sorted(values)
    value = ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]
    return None if math.isinf(value) else round(value, 1)


def summarize(runs: list[Run], trials: int) -> dict:
    return {
        "seeds": len(runs),
        "trials": trials,
        "trials_to_within_5pct": {
            "median": percentile([r.trials_to_within for r in runs], 0.5),
            "p90": percentile([r.trials_to_within for r in runs], 0.9),
            "reached": sum(1 for r in runs if not math.isinf(r.trials_to_within)),
        },
        "seconds_to_within_5pct": {
            "median": percentile([r.seconds_to_within for r in runs], 0.5),
            "p90": percentile([r.seconds_to_within for r in runs], 0.9),
        },
        "seconds_per_study": {"median": percentile([r.seconds_total for r in runs], 0.5)},
        "winner_fraction_of_best": {
            "median": round(statistics.median(r.winner_fraction for r in runs), 4),
            "min": round(min(r.winner_fraction for r in runs), 4),
        },
        "winner_best_or_tied": round(sum(r.winner_best_or_tied for r in runs) / len(runs), 3),
        # the goal's own test: an interval open below overlaps the best's and reads as tied
        "winner_within_5pct": round(
            sum(r.winner_fraction >= 1 - WITHIN for r in runs) / len(runs), 3
        ),
        # the same two against the surface's noise floor (Surface.noise_floor)
        "trials_to_within_noise": {
            "median": percentile([r.trials_to_within_noise for r in runs], 0.5),
            "p90": percentile([r.trials_to_within_noise for r in runs], 0.9),
            "reached": sum(1 for r in runs if not math.isinf(r.trials_to_within_noise)),
        },
        "winner_within_noise": round(sum(r.winner_within_noise for r in runs) / len(runs), 3),
    }


def report_lines(results: dict) -> list[str]:
    lines = []
    for name, r in results["samplers"].items():
        t, s, w = (
            r["trials_to_within_5pct"],
            r["seconds_to_within_5pct"],
            r["winner_fraction_of_best"],
        )
        lines.append(
            f"{name:17} within 5% after {t['median']} trials (p90 {t['p90']}; reached in "
            f"{t['reached']}/{r['seeds']}), {s['median']} s (p90 {s['p90']}); winner "
            f"{w['median']:.1%} of the best (min {w['min']:.1%}), best or tied in "
            f"{r['winner_best_or_tied']:.0%}, within 5% of it in {r['winner_within_5pct']:.0%}"
        )
        if "trials_to_within_noise" in r:
            n = r["trials_to_within_noise"]
            lines.append(
                f"{'':17} within the surface's noise of the best after {n['median']} trials "
                f"(p90 {n['p90']}; reached in {n['reached']}/{r['seeds']}); winner within it "
                f"in {r['winner_within_noise']:.0%}"
            )
        if "warm_start" in r:
            wt = r["warm_start"]["trials_to_within_5pct"]
            ws = r["warm_start"]["seconds_to_within_5pct"]
            lines.append(
                f"{'':17} warm start: within 5% after {wt['median']} trials (p90 {wt['p90']}), "
                f"{ws['median']} s"
            )
            if "trials_to_within_noise" in r["warm_start"]:
                w = r["warm_start"]
                wn = w["trials_to_within_noise"]
                lines.append(
                    f"{'':17} warm start: within the noise after {wn['median']} trials (p90 "
                    f"{wn['p90']}; reached in {wn['reached']}/{w['seeds']}); winner within it in "
                    f"{w['winner_within_noise']:.0%}"
                )
    surface = results.get("surface", {})
    if surface.get("repeat_cv") is not None:
        lines.append(
            f"the surface: two searches of a point differ by {surface['repeat_cv']:.1%} (log sd), "
            f"so the best may lie {surface['noise_floor']:.1%} below its mean: 'within the "
            "noise' counts from there (or 5%, if wider)"
        )
    if surface.get("interval_holds_repeat") is not None:
        lines.append(
            f"the surface: a search's 95% interval holds another search of its point in "
            f"{surface['interval_holds_repeat']:.0%} of pairs (about 83% if the intervals held "
            "all of the noise)"
        )
    for name, why in results.get("skipped", {}).items():
        lines.append(f"{name:17} skipped: {why}")
    return lines

"""What a smaller `load.max_trial_s` would have measured, read from a study already run.

The capacity search picks its next rate from the steps so far, never from its budget; the
budget only decides whether another step starts (tuner/capacity/search.py's bound_reached).
So a search with a smaller budget runs a prefix of a larger one's steps, and its capacity is
the estimate from that prefix. Each completed search of the study is cut where the smaller
budget would have stopped it and estimated again, which answers "would 30 s a trial do?"
from the searches a user already paid for, without measuring anything twice.

Two figures per budget: how far each cut search lands from the same search run whole (what
the budget alone loses), and, for points the study searched more than once (a surface's
repeats), how far it lands from the *other* searches of its point run whole, beside the same
figure for the whole searches (what the budget loses against the run-to-run noise there is
anyway). The prefix is exact for the search loop. The low-rate check runs after that loop,
so a shorter search could have run one where the cut has none; such a step only ever fails a
configuration that is slow at light traffic.

    python -m bench.trial_budget --config tuner.toml --budget 35 --budget 30 --budget 25 \\
        [--storage URL] [--study NAME] [--json PATH]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import optuna

from bench.replay_figures import WITHIN
from tuner.capacity.interval import CapacityInterval, capacity_interval
from tuner.capacity.search import SearchOutcome, SearchSettings, bound_reached, capacity_point
from tuner.capacity.settings import search_settings, step_criteria
from tuner.capacity.step import CurvePoint, StepCriteria
from tuner.config import load_config
from tuner.errors import TunerError
from tuner.load.window import percentile
from tuner.storage import StorageError, open_storage
from tuner.storage.sqlite import sqlite_file
from tuner.trial_record import params_key


@dataclasses.dataclass(frozen=True)
class Search:
    """One completed search: its point's parameters and its steps as recorded."""

    key: tuple
    points: list[CurvePoint]


@dataclasses.dataclass(frozen=True)
class Cut:
    """A search as a smaller budget would have run it."""

    seconds: float  # the steps it kept, ramp and warm-ups included
    interval: CapacityInterval | None


def cut(points: list[CurvePoint], settings: SearchSettings, criteria: StepCriteria) -> Cut:
    """The prefix of `points` a search with `settings.max_trial_s` runs, and its estimate."""
    kept = SearchOutcome()
    elapsed = 0.0
    for point in points:
        if bound_reached(kept, settings, elapsed):
            break
        kept.points.append(point)
        elapsed += point.result.elapsed_s
    best, _ = capacity_point(kept.points)
    return Cut(elapsed, capacity_interval(kept.points, best, criteria))


def searches(study: optuna.Study) -> list[Search]:
    out = []
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
        curve = trial.user_attrs.get("capacity_curve")
        if curve:
            out.append(Search(params_key(trial.params), [CurvePoint.from_dict(d) for d in curve]))
    return out


def off_by(a: Cut, b: Cut) -> float | None:
    """|a - b| / b of two searches' estimates; None when either has none."""
    if a.interval is None or b.interval is None or b.interval.estimate <= 0:
        return None
    return abs(a.interval.estimate - b.interval.estimate) / b.interval.estimate


def figures(
    found: list[Search],
    whole: list[Cut],
    settings: SearchSettings,
    criteria: StepCriteria,
    budget: float,
) -> dict:
    """`whole`: each of `found` cut at the configured budget, the yardstick of every budget."""
    limited = dataclasses.replace(settings, max_trial_s=budget)
    short = [cut(s.points, limited, criteria) for s in found]
    own = [d for a, b in zip(short, whole, strict=True) if (d := off_by(a, b)) is not None]
    by_point: dict[tuple, list[int]] = defaultdict(list)
    for i, s in enumerate(found):
        by_point[s.key].append(i)
    others_short, others_whole = [], []
    for i, s in enumerate(found):
        for j in by_point[s.key]:
            if j != i:
                others_short.append(off_by(short[i], whole[j]))
                others_whole.append(off_by(whole[i], whole[j]))
    widths = [c.interval.half_width for c in short if c.interval and c.interval.half_width]
    return {
        "budget_s": budget,
        "searches": len(found),
        "seconds": _quantiles([c.seconds for c in short]),
        "within_5pct_of_whole_search": _share([d <= WITHIN for d in own]),
        "off_from_whole_search": _quantiles(own, 3),
        "open_below": _share([c.interval is not None and c.interval.low == 0 for c in short]),
        "precision": _quantiles(widths, 3),
        "off_from_other_searches": _quantiles([d for d in others_short if d is not None], 3),
        "whole_off_from_other_searches": _quantiles([d for d in others_whole if d is not None], 3),
    }


def _quantiles(values: list[float], digits: int = 1) -> dict:
    """Median and 90th percentile (nearest rank, as every table of the bench takes it)."""
    if not values:
        return {"median": None, "p90": None, "n": 0}
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), digits),
        "p90": round(percentile(ordered, 90), digits),
        "n": len(ordered),
    }


def _share(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 3) if flags else None


def report_line(f: dict) -> str:
    def pct(q: dict) -> str:
        return "-" if q["median"] is None else f"{q['median']:.1%} (p90 {q['p90']:.1%})"

    return (
        f"max_trial_s {f['budget_s']:g}: searches {f['seconds']['median']} s median; "
        f"{f['within_5pct_of_whole_search']:.0%} within 5% of the whole search, off by "
        f"{pct(f['off_from_whole_search'])}; open below {f['open_below']:.0%}; precision "
        f"{pct(f['precision'])}; off from the point's other searches "
        f"{pct(f['off_from_other_searches'])} (whole searches: "
        f"{pct(f['whole_off_from_other_searches'])})"
    )


def _load(url: str, name: str) -> optuna.Study:
    db = sqlite_file(url)
    if db is not None and not db.exists():
        raise StorageError(f"there is no database at {db}; give --storage the study's URL")
    try:
        return optuna.load_study(study_name=name, storage=open_storage(url))
    except KeyError:
        raise StorageError(f"there is no study named {name!r} in {url}; give --study") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.trial_budget",
        description="Cut a study's searches where a smaller load.max_trial_s would have "
        "stopped them, and say what that budget would have measured.",
    )
    parser.add_argument("--config", type=Path, help="its objective and [load] settings")
    parser.add_argument("--storage", help="default: the config's study.storage")
    parser.add_argument("--study", help="default: the config's study.name")
    parser.add_argument(
        "--budget", type=float, action="append", required=True, help="seconds; repeatable"
    )
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
        study = _load(args.storage or config.study.storage, args.study or config.study.name)
    except (TunerError, StorageError) as exc:
        print(f"bench.trial_budget: {exc}", file=sys.stderr)
        return 2
    name = study.study_name
    found = searches(study)
    if not found:
        print(f"bench.trial_budget: study {name!r} has no completed search", file=sys.stderr)
        return 2
    settings, criteria = search_settings(config), step_criteria(config)
    whole = [cut(s.points, settings, criteria) for s in found]
    results = [
        figures(found, whole, settings, criteria, b) for b in sorted(args.budget, reverse=True)
    ]
    for f in results:
        print(report_line(f))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"study": name, "budgets": results}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Can the tuner's numbers be trusted, and is its pick good? Three studies on the demo model,
run through the tuner's own library (embedded server, the demo's load profile):

1. noise: no batching and one batching configuration, each measured `--repeats` times,
   interleaved, so the spread says which differences between trials mean something;
2. grid: every point of an 18-point space (max_batch_size x batch_timeout_micros x
   num_batch_threads), plus the two reference trials;
3. tpe: the tuner's default sampler on the same space with `--tpe-trials` trials, and where
   its pick ranks among the grid's measurements of the same points.

    python bench/tuner_bench.py [--repeats 5] [--tpe-trials 8] [--warmup 3] [--measure 12]

Writes bench/out/tuner_bench.json; the studies stay in bench/out/tuner/tuning.db for
optuna-dashboard.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from bench.study_figures import fresh_dir, say, spread, write_results  # noqa: E402
from tuner.config import TunerConfig, load_config  # noqa: E402
from tuner.study.run import load_search_space, open_study, optimize  # noqa: E402
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, is_feasible  # noqa: E402

GRID_SPACE = """description = "tuner_bench: 18 points"
[batching]
max_batch_size = { choices = [8, 32, 128] }
batch_timeout_micros = { choices = [0, 1000, 5000] }
num_batch_threads = { choices = [1, 2] }
max_enqueued_batches = 32
[server_flags]
tensorflow_intra_op_parallelism = 1
"""
NOISE_SPACE = """description = "tuner_bench: one batching configuration"
[batching]
max_batch_size = 32
batch_timeout_micros = 5000
num_batch_threads = 2
max_enqueued_batches = 32
[server_flags]
tensorflow_intra_op_parallelism = 1
"""
TUNED_KEYS = ("max_batch_size", "batch_timeout_micros", "num_batch_threads")


def make_config(
    out: Path, args: argparse.Namespace, name: str, space: str, **study: object
) -> TunerConfig:
    load = {
        "mode": "closed",
        "users": 32,
        "spawn_rate": 32.0,
        "warmup_s": args.warmup,
        "measure_s": args.measure,
    }
    config = load_config(
        None,
        {
            "study": {"name": name, "storage": f"sqlite:///{out / 'tuning.db'}", **study},
            "server": {"backend": "embedded", "model_base_path": str(args.model_dir)},
            "search": {"space": space},
            "load": load,
            "objective": {"slo_ms": 100.0},
            "confirm": {"top_k": 0},
        },
    )
    config.base_dir = out
    return config


def run_noise(out: Path, args: argparse.Namespace) -> dict:
    config = make_config(out, args, "noise", "noise.toml", n_trials=2 * args.repeats)
    study = open_study(config, load_search_space(config))
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: NO_BATCHING})
        study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: "fixed_batching"})
    optimize(config, say=say("noise"))
    figures: dict[str, dict[str, list[float]]] = {}
    for trial in study.get_trials(states=[optuna.trial.TrialState.COMPLETE]):
        kind = figures.setdefault(trial.user_attrs[REFERENCE_ATTR], {"rps": [], "p95_ms": []})
        kind["rps"].append(trial.user_attrs["rps"])
        kind["p95_ms"].append(trial.user_attrs["p95_ms"])
    result = {name: {k: spread(v) for k, v in kind.items()} for name, kind in figures.items()}
    unbatched = figures.get(NO_BATCHING, {}).get("rps", [])
    batched = figures.get("fixed_batching", {}).get("rps", [])
    if unbatched and len(unbatched) == len(batched):  # pairs measured back to back
        result["ratio_pairs"] = spread([b / a for a, b in zip(unbatched, batched, strict=True)], 2)
    return result


def key(trial: optuna.trial.FrozenTrial) -> tuple:
    return tuple(trial.params.get(name) for name in TUNED_KEYS)


def searched(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [
        t
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and REFERENCE_ATTR not in t.user_attrs
    ]


def run_search(out: Path, args: argparse.Namespace, name: str, sampler: str, n: int) -> list:
    config = make_config(out, args, name, "grid.toml", sampler=sampler, n_trials=n)
    optimize(config, say=say(name))
    return optuna.load_study(study_name=name, storage=config.study.storage).get_trials()


def describe(trial: optuna.trial.FrozenTrial) -> dict:
    a = trial.user_attrs
    return {
        "trial": trial.number,
        "params": dict(zip(TUNED_KEYS, key(trial), strict=True)),
        "reference": a.get(REFERENCE_ATTR),
        "rps": round(a["rps"], 1),
        "p95_ms": round(a["p95_ms"], 1),
        "feasible": is_feasible(trial),
    }


def ranked_feasible(trials: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    """The searched, feasible trials, fastest first."""
    return sorted(
        (t for t in searched(trials) if is_feasible(t)), key=lambda t: -t.user_attrs["rps"]
    )


def compare(grid: list, tpe: list) -> dict:
    grid_points = ranked_feasible(grid)
    tpe_points = ranked_feasible(tpe)
    references = {
        t.user_attrs[REFERENCE_ATTR]: describe(t)
        for t in grid
        if t.state == optuna.trial.TrialState.COMPLETE and REFERENCE_ATTR in t.user_attrs
    }
    result: dict = {
        "grid_points_measured": len(searched(grid)),
        "grid_ranking": [describe(t) for t in grid_points],
        "references_in_grid_study": references,
        "tpe_trials": [describe(t) for t in searched(tpe)],
    }
    if grid_points and tpe_points:
        pick = tpe_points[0]
        rank, same = next(
            ((i, t) for i, t in enumerate(grid_points, start=1) if key(t) == key(pick)),
            (None, None),
        )
        grid_rps_of_pick = same.user_attrs["rps"] if same is not None else None
        result["tpe_pick"] = describe(pick) | {
            "rank_in_grid": rank,
            "grid_rps_of_same_point": grid_rps_of_pick,
            "share_of_grid_best_percent": round(
                100 * (grid_rps_of_pick or 0) / grid_points[0].user_attrs["rps"], 1
            ),
            "distinct_points_tried": len({key(t) for t in searched(tpe)}),
        }
    return result


def summary(results: dict) -> str:
    lines = []
    for name, kind in results["noise"].items():
        if name == "ratio_pairs":
            lines.append(
                f"noise: batched/unbatched ratio per pair {kind['values']}, median {kind['median']}"
            )
            continue
        rps, p95 = kind["rps"], kind["p95_ms"]
        lines.append(
            f"noise: {name}: req/s median {rps['median']} ({rps['min']}-{rps['max']}, "
            f"CV {rps['cv_percent']}%), p95 median {p95['median']} ms (CV {p95['cv_percent']}%)"
        )
    search = results["search"]
    for rank, point in enumerate(search["grid_ranking"], start=1):
        lines.append(f"grid #{rank}: {point['params']} {point['rps']} req/s p95 {point['p95_ms']}")
    for name, point in search["references_in_grid_study"].items():
        lines.append(f"reference {name}: {point['rps']} req/s p95 {point['p95_ms']}")
    pick = search.get("tpe_pick")
    if pick:
        lines.append(
            f"tpe pick: {pick['params']} {pick['rps']} req/s; in the grid rank "
            f"{pick['rank_in_grid']}, {pick['share_of_grid_best_percent']}% of the grid's best; "
            f"{pick['distinct_points_tried']} distinct points tried"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="noise: measurements per config")
    parser.add_argument("--tpe-trials", type=int, default=8, help="tpe: trials after references")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per trial")
    parser.add_argument("--measure", type=float, default=12.0, help="seconds measured per trial")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)

    workdir = fresh_dir(args.out / "tuner")
    (workdir / "grid.toml").write_text(GRID_SPACE)
    (workdir / "noise.toml").write_text(NOISE_SPACE)

    noise = run_noise(workdir, args)
    grid = run_search(workdir, args, "grid", "grid", 2 + 18)
    tpe = run_search(workdir, args, "tpe", "tpe", 2 + args.tpe_trials)
    results = {
        "profile": {"users": 32, "warmup_s": args.warmup, "measure_s": args.measure},
        "noise": noise,
        "search": compare(grid, tpe),
    }
    write_results(args.out / "tuner_bench.json", results, summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

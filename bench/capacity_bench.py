"""Capacity at the SLO: how far tuning moves it, how noisy one capacity is, what a trial
costs, and whether the closed loop would have ranked the configurations the same way.

Through the tuner's own library, with the demo's settings (tuner.toml: embedded server, the
quick space, capacity mode and its SLO), in bench/out/capacity/:

1. tuned: a capacity study of `--trials` trials with its confirmation pass: the capacity of
   no batching, of TF Serving's recommended start and of the confirmed winner, side by side,
   and the ratios (goals: >= 3x and >= 1.5x); seconds per trial, completed and pruned
   (goals: median <= 30 s, pruned <= 10 s);
2. noise: the winner's configuration searched `--repeats` times (never pruned): median,
   min-max and CV of its capacity (goal: CV <= 5%);
3. closed: the same configurations as the tuned study's measured trials, under the closed
   loop (32 users, no think time): their closed-loop req/s ranking beside the capacity one.

    python bench/capacity_bench.py [--trials 8] [--repeats 5] [--short]

Writes bench/out/capacity_bench.json; the studies stay in bench/out/capacity/tuning.db.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from bench.study_figures import fresh_dir, say, spread, write_results  # noqa: E402
from tuner.config import TunerConfig, load_config  # noqa: E402
from tuner.study.progress import describe_params  # noqa: E402
from tuner.study.run import (  # noqa: E402
    load_search_space,
    open_study,
    optimize,
    prepare_new_study,
)
from tuner.trial_record import REFERENCE_ATTR, is_feasible  # noqa: E402

COMPLETE = optuna.trial.TrialState.COMPLETE
PRUNED = optuna.trial.TrialState.PRUNED


def make_config(out: Path, args: argparse.Namespace, name: str, **sections: dict) -> TunerConfig:
    """The demo's config (tuner.toml), in `out`, with the embedded server."""
    overrides: dict[str, dict] = {
        "study": {"name": name, "storage": f"sqlite:///{out / 'tuning.db'}", "workdir": "runs"},
        "server": {"backend": "embedded", "model_base_path": str(args.model_dir)},
    }
    if args.short:
        overrides["load"] = {"step_measure_s": 3.0, "max_steps": 5}
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    config = load_config(REPO / "tuner.toml", overrides)
    config.base_dir = out
    config.study.artifact_dir = str(out / "artifacts")
    return config


def seconds(trial: optuna.trial.FrozenTrial) -> float:
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def point(trial: optuna.trial.FrozenTrial, percentile: str) -> dict:
    a = trial.user_attrs
    return {
        "trial": trial.number,
        "params": describe_params(trial),
        "reference": a.get(REFERENCE_ATTR),
        "state": trial.state.name,
        "capacity_rps": a.get("capacity_rps"),
        f"{percentile}_at_capacity_ms": a.get("latency_at_capacity_ms"),
        "mean_batch_size": a.get("mean_batch_size"),
        "steps": a.get("search_steps"),
        "seconds": round(seconds(trial), 1),
        "feasible": is_feasible(trial),
        "pruned_because": a.get("pruned_because"),
    }


def run_tuned(out: Path, args: argparse.Namespace) -> tuple[dict, optuna.Study]:
    config = make_config(
        out, args, "tuned", study={"n_trials": args.trials}, confirm={"top_k": 2, "repeats": 1}
    )
    result = optimize(config, say=say("tuned"))
    study = optuna.load_study(study_name="tuned", storage=config.study.storage)
    percentile = config.objective.percentile
    trials = study.get_trials()
    refs = {t.user_attrs[REFERENCE_ATTR]: t for t in trials if REFERENCE_ATTR in t.user_attrs}
    winner = result.winner or {}
    won = study.trials[winner["trial"]] if winner else None

    confirmation = study.user_attrs.get("confirmation") or {}

    def reference(name: str) -> float | None:
        """The reference's median capacity when the confirmation pass re-measured it."""
        trial = refs.get(name)
        if trial is None:
            return None
        confirmed = confirmation.get(str(trial.number)) or {}
        return confirmed.get("median_rps") or trial.user_attrs.get("capacity_rps") or None

    median = winner.get("median_rps")
    capacity = {
        "no_batching": reference("no_batching"),
        "tf_serving_recommended": reference("tf_serving_recommended"),
        "winner_median": round(median, 1) if median is not None else None,
        "winner_params": describe_params(won) if won else None,
    }
    ratios = {}
    for name in ("no_batching", "tf_serving_recommended"):
        if capacity[name] and capacity["winner_median"]:
            ratios[f"winner_vs_{name}"] = round(capacity["winner_median"] / capacity[name], 2)
    completed = [seconds(t) for t in trials if t.state == COMPLETE]
    pruned = [seconds(t) for t in trials if t.state == PRUNED]
    looked_again = [t for t in trials if probed_twice(t)]
    return {
        "objective": study.user_attrs.get("objective"),
        "capacity_rps": capacity,
        "ratios": ratios,
        "seconds_per_trial": {
            "completed": spread(completed),
            "pruned": spread(pruned),
        },
        "second_looks": {
            "probes": sum(1 for t in trials if is_probed(t)),
            "looked_again": len(looked_again),
            "kept": sum(1 for t in looked_again if t.state == COMPLETE),
        },
        "trials": [point(t, percentile) for t in trials if t.state in (COMPLETE, PRUNED)],
        "confirmation": study.user_attrs.get("confirmation"),
    }, study


def is_probed(trial: optuna.trial.FrozenTrial) -> bool:
    """A searched trial that could be pruned: its first step probed the incumbent."""
    return REFERENCE_ATTR not in trial.user_attrs and trial.state in (COMPLETE, PRUNED)


def probed_twice(trial: optuna.trial.FrozenTrial) -> bool:
    """The probe only just missed and was measured again at the same rate."""
    curve = trial.user_attrs.get("capacity_curve") or []
    return (
        is_probed(trial)
        and len(curve) >= 2
        and curve[0]["target_rps"] == curve[1]["target_rps"]
        and not curve[0]["passed"]
    )


def fixed_space(out: Path, trial: optuna.trial.FrozenTrial) -> Path:
    """A space with every key fixed at the trial's values, so each trial measures it."""
    lines = ['description = "capacity_bench: one configuration"', "[batching]"]
    flags = []
    for key, value in trial.params.items():
        target = flags if key.startswith("tensorflow_") else lines
        target.append(f"{key} = {json.dumps(value)}")
    text = "\n".join([*lines, "[server_flags]", *flags]) + "\n"
    path = out / "noise.toml"
    path.write_text(text)
    return path


def run_noise(out: Path, args: argparse.Namespace, winner: optuna.trial.FrozenTrial) -> dict:
    space_file = fixed_space(out, winner)
    config = make_config(
        out,
        args,
        "noise",
        study={"n_trials": args.repeats},
        search={"space": str(space_file)},
        confirm={"top_k": 0},
        load={
            "resolution": args.noise_resolution,
            "max_steps": args.noise_max_steps,
            "max_trial_s": 600.0,  # the step count bounds the search here, not the clock
            **({"step_measure_s": args.noise_window_s} if args.noise_window_s else {}),
        },
    )
    space = load_search_space(config)
    with contextlib.suppress(KeyError):  # a --noise-only rerun replaces the last one
        optuna.delete_study(study_name="noise", storage=config.study.storage)
    study = open_study(config, space)
    study.set_user_attr("load_mode", config.load.mode)
    study.set_user_attr("search_space", space.name)
    for _ in range(args.repeats):  # a reference label: never pruned, each a whole search
        study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: "noise_repeat"})
    optimize(config, say=say("noise"))
    trials = [t for t in study.get_trials() if t.state == COMPLETE]
    return {
        "params": describe_params(winner),
        "resolution": config.load.resolution,
        "max_steps": config.load.max_steps,
        "step_measure_s": config.load.step_measure_s,
        "capacity_rps": spread([t.user_attrs["capacity_rps"] for t in trials]),
        "latency_at_capacity_ms": spread(
            [t.user_attrs["latency_at_capacity_ms"] or 0.0 for t in trials]
        ),
        "steps": [t.user_attrs["search_steps"] for t in trials],
        "seconds": spread([seconds(t) for t in trials]),
    }


def run_closed(out: Path, args: argparse.Namespace, tuned: optuna.Study) -> dict:
    """The tuned study's configurations under the closed loop, ranked beside their capacity."""
    config = make_config(
        out,
        args,
        "closed",
        load={"mode": "closed", "users": 32, "spawn_rate": 32.0, "warmup_s": 3.0,
              "measure_s": 6.0 if args.short else 12.0},
        confirm={"top_k": 0},
    )  # fmt: skip
    space = load_search_space(config)
    study = open_study(config, space)
    prepare_new_study(study, space, config)  # the two references
    measured = [
        t
        for t in tuned.get_trials()
        if t.state == COMPLETE and REFERENCE_ATTR not in t.user_attrs and t.params
    ]
    seen: set[tuple] = set()
    for trial in measured:
        key = tuple(sorted(trial.params.items()))
        if key not in seen:
            seen.add(key)
            study.enqueue_trial(trial.params)
    config.study.n_trials = len(study.get_trials())
    optimize(config, say=say("closed"))
    closed = {
        describe_params(t): t.user_attrs.get("rps")
        for t in study.get_trials()
        if t.state == COMPLETE
    }
    capacity = {describe_params(t): t.user_attrs.get("capacity_rps") for t in measured}
    for t in tuned.get_trials():
        if REFERENCE_ATTR in t.user_attrs and t.state == COMPLETE:
            capacity[describe_params(t)] = t.user_attrs.get("capacity_rps")
    rows = [
        {"params": name, "capacity_rps": capacity[name], "closed_rps": closed.get(name)}
        for name in capacity
    ]
    by_capacity = sorted(rows, key=lambda r: -(r["capacity_rps"] or 0))
    by_closed = sorted(rows, key=lambda r: -(r["closed_rps"] or 0))
    for rank, row in enumerate(by_capacity, start=1):
        row["capacity_rank"] = rank
        row["closed_rank"] = by_closed.index(row) + 1
    return {"profile": "32 users, no think time", "rows": by_capacity}


def summary(results: dict) -> str:
    t = results["tuned"]
    c = t["capacity_rps"]
    lines = [
        f"objective: {t['objective']}",
        f"capacity: no batching {c['no_batching']} req/s, TF Serving's recommended start "
        f"{c['tf_serving_recommended']} req/s, tuned winner ({c['winner_params']}) "
        f"{c['winner_median']} req/s (confirmed median)",
        f"ratios: {t['ratios']}",
    ]
    for kind, s in t["seconds_per_trial"].items():
        lines.append(
            f"seconds per {kind} trial: median {s['median']} ({s['min']}-{s['max']}), "
            f"n = {len(s['values'])}"
        )
    looks = t.get("second_looks")
    if looks:
        lines.append(
            f"second looks: {looks['looked_again']} of {looks['probes']} probes only just "
            f"missed and ran again; {looks['kept']} of those passed and were searched"
        )
    if "noise" in results:
        n = results["noise"]["capacity_rps"]
        lines.append(
            f"noise: capacity median {n['median']} req/s ({n['min']}-{n['max']}, "
            f"CV {n['cv_percent']}%) over {len(n['values'])} searches"
        )
    for row in results.get("closed", {}).get("rows", []):
        lines.append(
            f"rank capacity #{row['capacity_rank']} closed #{row['closed_rank']}: "
            f"{row['params']}: capacity {row['capacity_rps']} req/s, closed {row['closed_rps']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=8, help="tuned: trials, references included")
    parser.add_argument("--repeats", type=int, default=5, help="noise: searches of one config")
    parser.add_argument("--short", action="store_true", help="short steps: to check it works")
    parser.add_argument(
        "--noise-resolution",
        type=float,
        default=0.05,
        help="noise: the searches' load.resolution (the demo's own is 0.1)",
    )
    parser.add_argument(
        "--noise-max-steps", type=int, default=12, help="noise: steps a search may take"
    )
    parser.add_argument(
        "--noise-window-s",
        type=float,
        default=None,
        help="noise: each step's measured window (default: the demo's 3 s)",
    )
    parser.add_argument(
        "--noise-only",
        action="store_true",
        help="only the noise part, of the last run's winner (bench/out/capacity/tuning.db)",
    )
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)

    workdir = args.out / "capacity"
    path = args.out / "capacity_bench.json"
    if args.noise_only:
        results = json.loads(path.read_text())
        study = optuna.load_study(study_name="tuned", storage=f"sqlite:///{workdir / 'tuning.db'}")
        winner = (study.user_attrs.get("winner") or {}).get("trial")
        results["noise"] = run_noise(workdir, args, study.trials[winner])
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(summary(results))
        return 0
    fresh_dir(workdir)
    tuned, study = run_tuned(workdir, args)
    results: dict = {"short": args.short, "tuned": tuned}
    winner = (study.user_attrs.get("winner") or {}).get("trial")
    if winner is not None and study.trials[winner].params:
        results["noise"] = run_noise(workdir, args, study.trials[winner])
    results["closed"] = run_closed(workdir, args, study)
    write_results(path, results, summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

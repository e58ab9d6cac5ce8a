"""How trustworthy one capacity is: the bench's own pauses, repeated searches interleaved, the
capacity's interval against the other searches, and identical configurations' probes.

Through the tuner's own library, with the demo's settings (tuner.toml: embedded server, the
quick space, capacity mode and its SLO), in bench/out/capacity_precision/:

1. pauses: one configuration searched with the interpreter's collector defaults
   (TUNER_GC_TUNING=0, "before") and with the servers' tuning (frozen start-up objects, higher
   thresholds, "after"): pauses per minute and their length in each process (the pause file,
   tuner/capacity/pauses.py), and the share of 1-s intervals whose p95 is over 3x their step's
   median interval p95;
2. interleaved: `--rounds` rounds, each searching no batching, TF Serving's recommended start
   and one batched configuration (max 32, 5 ms, 2 threads, queue 32, powers of two) in a
   random order, never pruned: per configuration the capacities in run order, their CV (goal
   <= 5%), the trend with order (Spearman's rho; goal: none), how often one search's 95%
   interval holds the median of the others (goal >= 90%), as recorded and widened by the
   run-to-run spread of the *other* two configurations (tuner/study/run_spread.py, as `show`
   widens it, without this configuration's own repeats), and the precision reached; and,
   over all of them, each capacity over its configuration's median against the machine's
   speed its trial recorded (`host_loop_ms`, `host_memory_ms`: Pearson's r of the logs);
3. probes: the batched configuration enqueued `--probes` times in one study (prunable): how
   often a configuration identical to the incumbent passes its probe (goal: 5 of 6);
   seconds per trial, completed and pruned (goals: median <= 30 s and <= 10 s).

    python bench/capacity_precision.py [--rounds 5] [--probes 6] [--short]

Writes bench/out/capacity_precision.json.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import random
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from bench.capacity_bench import make_config, seconds  # noqa: E402
from bench.machine_watch import MachineWatch, machine_by_phase  # noqa: E402
from bench.study_figures import fresh_dir, say, spread, write_results  # noqa: E402
from model_server.pauses import ENV_TUNING  # noqa: E402
from tuner.capacity.pauses import PauseLog  # noqa: E402
from tuner.capacity.step import CurvePoint  # noqa: E402
from tuner.storage import SampleStore  # noqa: E402
from tuner.study.run import load_search_space, open_study, optimize  # noqa: E402
from tuner.study.run_spread import RunSpread, pooled, widen  # noqa: E402
from tuner.trial_record import (  # noqa: E402
    HOST_LOOP_ATTR,
    HOST_MEMORY_ATTR,
    NO_BATCHING,
    REFERENCE_ATTR,
)

COMPLETE = optuna.trial.TrialState.COMPLETE
PRUNED = optuna.trial.TrialState.PRUNED
BATCHED = {
    "max_batch_size": 32,
    "batch_timeout_micros": 5000,
    "num_batch_threads": 2,
    "max_enqueued_batches": 32,
    "allowed_batch_sizes": "powers_of_two",
    "tensorflow_intra_op_parallelism": 0,
}
KIND = "bench_kind"  # which of the three configurations a trial measured
SPIKE = 3.0  # an interval whose p95 is over 3x its step's median interval p95


def fresh_study(config, name: str) -> optuna.Study:
    with contextlib.suppress(KeyError):
        optuna.delete_study(study_name=name, storage=config.study.storage)
    space = load_search_space(config)
    study = open_study(config, space)
    study.set_user_attr("load_mode", config.load.mode)
    study.set_user_attr("search_space", space.name)
    return study


def tf_start(config) -> dict:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 2
    return load_search_space(config).reference_params(cores)


def spikes(storage: str, study: str) -> dict:
    """The share of measured 1-s intervals whose p95 is over SPIKE x their step's median."""
    with SampleStore(storage) as store:
        rows = [s for s in store.read(study) if not s.in_warmup and s.p95_ms]
    by_step: dict[tuple, list[float]] = {}
    for s in rows:
        by_step.setdefault((s.trial_number, s.phase, s.step), []).append(s.p95_ms)
    total = hits = 0
    for values in by_step.values():
        median = statistics.median(values)
        total += len(values)
        hits += sum(1 for v in values if v > SPIKE * median)
    return {"intervals": total, "spikes": hits, "share": round(hits / total, 4) if total else None}


def pause_figures(log: Path, minutes: float) -> dict:
    pauses = PauseLog(log).read()
    out = {}
    for process in sorted({p.process for p in pauses}):
        mine = [p for p in pauses if p.process == process and p.kind.startswith("gc")]
        lag = [p for p in pauses if p.process == process and p.kind == "loop"]
        out[process] = {
            "gc_per_minute": round(len(mine) / minutes, 1) if minutes else None,
            "gc_ms": spread([p.ms for p in mine]),
            "gc_ms_over_10": sum(1 for p in mine if p.ms > 10),
            "loop_lag_over_10ms_per_minute": (
                round(sum(1 for p in lag if p.ms > 10) / minutes, 1) if minutes else None
            ),
            "loop_lag_max_ms": max((p.ms for p in lag), default=None),
        }
    return out


def run_pauses(out: Path, args: argparse.Namespace) -> dict:
    results = {}
    for label, tuning in (("before", "0"), ("after", "1")):
        os.environ[ENV_TUNING] = tuning
        try:
            name = f"pauses-{label}"
            config = make_config(
                out, args, name, study={"n_trials": args.pause_searches}, confirm={"top_k": 0}
            )
            study = fresh_study(config, name)
            for _ in range(args.pause_searches):
                study.enqueue_trial(BATCHED, user_attrs={REFERENCE_ATTR: "bench_repeat"})
            optimize(config, say=say(name))
        finally:
            os.environ.pop(ENV_TUNING, None)
        trials = [t for t in study.get_trials() if t.state == COMPLETE]
        minutes = sum(seconds(t) for t in trials) / 60
        log = config.path(config.study.workdir) / name / "pauses.jsonl"
        results[label] = {
            "minutes": round(minutes, 2),
            "processes": pause_figures(log, minutes),
            "interval_spikes": spikes(config.study.storage, name),
            "capacity_rps": spread([t.user_attrs["capacity_rps"] for t in trials]),
        }
    return results


def spearman(values: list[float]) -> float | None:
    """Rank correlation of the values with their order (no ties expected)."""
    n = len(values)
    if n < 3:
        return None
    ranks = {i: r for r, (i, _) in enumerate(sorted(enumerate(values), key=lambda x: x[1]))}
    d2 = sum((i - ranks[i]) ** 2 for i in range(n))
    return round(1 - 6 * d2 / (n * (n * n - 1)), 3)


def run_interleaved(out: Path, args: argparse.Namespace) -> dict:
    config = make_config(
        out, args, "interleaved", study={"n_trials": 3 * args.rounds}, confirm={"top_k": 0}
    )
    study = fresh_study(config, "interleaved")
    configs = {"no_batching": {}, "tf_serving_recommended": tf_start(config), "batched": BATCHED}
    rng = random.Random(17)
    for _ in range(args.rounds):
        order = list(configs)
        rng.shuffle(order)
        for kind in order:  # a reference label: never pruned, each a whole search
            label = NO_BATCHING if kind == "no_batching" else "bench_repeat"
            study.enqueue_trial(configs[kind], user_attrs={REFERENCE_ATTR: label, KIND: kind})
    optimize(config, say=say("interleaved"))
    trials = {
        kind: [
            t for t in study.get_trials() if t.state == COMPLETE and t.user_attrs.get(KIND) == kind
        ]
        for kind in configs
    }
    capacities = {kind: [t.user_attrs["capacity_rps"] for t in ts] for kind, ts in trials.items()}
    results = {}
    for kind, ts in trials.items():
        cis = [t.user_attrs.get("capacity_ci_rps") for t in ts]
        # the spread as a study would know it without this configuration's own repeats
        others = pooled(v for k, v in capacities.items() if k != kind)
        results[kind] = {
            "capacity_rps": spread(capacities[kind]),
            "spearman_vs_order": spearman(capacities[kind]),
            "interval_holds_others_median": holds_others_median(capacities[kind], cis),
            "widened_interval_holds_others_median": holds_others_median(
                capacities[kind], cis, others
            ),
            "run_spread_of_the_others": others.as_dict() if others else None,
            "capacity_ci_rps": cis,
            "precision_reached": [t.user_attrs.get("capacity_precision") for t in ts],
            "undecided_steps": [t.user_attrs.get("undecided_steps") for t in ts],
            "seconds": spread([seconds(t) for t in ts]),
        }
    results["machine_vs_capacity"] = machine_vs_capacity(
        [[(t.user_attrs["capacity_rps"], t.user_attrs) for t in ts] for ts in trials.values()]
    )
    return results


def machine_vs_capacity(groups: list[list[tuple[float, dict]]]) -> dict[str, float | None]:
    """How much of the repeated searches' spread the machine's own speed explains: each
    capacity over its configuration's median, against the speed its trial recorded
    (tuner/capacity/host_speed.py), as Pearson's r of the logs, per figure; None with fewer
    than 3 searches that have it, or no spread in it."""
    out: dict[str, float | None] = {}
    for attr in (HOST_LOOP_ATTR, HOST_MEMORY_ATTR):
        relative, speeds = [], []
        for group in groups:
            median = statistics.median(capacity for capacity, _ in group) if group else 0.0
            for capacity, attrs in group:
                ms = attrs.get(attr)
                if capacity > 0 and median > 0 and isinstance(ms, int | float) and ms > 0:
                    relative.append(math.log(capacity / median))
                    speeds.append(math.log(ms))
        try:
            out[attr] = round(statistics.correlation(speeds, relative), 3)
        except statistics.StatisticsError:  # too few, or a constant
            out[attr] = None
    return out


def holds_others_median(
    capacities: list[float], cis: list[list | None], run_spread: RunSpread | None = None
) -> float | None:
    """How often one search's interval (widened by `run_spread`, when given) holds the median
    of the other searches of the same configuration."""
    covered = []
    for i, (capacity, ci) in enumerate(zip(capacities, cis, strict=True)):
        others = capacities[:i] + capacities[i + 1 :]
        if not others or not ci:
            continue
        low, high = widen(capacity, ci[0], ci[1], run_spread)
        median = statistics.median(others)
        covered.append(low <= median <= (high if high is not None else float("inf")))
    return round(sum(covered) / len(covered), 3) if covered else None


def run_probes(out: Path, args: argparse.Namespace) -> dict:
    config = make_config(out, args, "probes", study={"n_trials": args.probes}, confirm={"top_k": 0})
    study = fresh_study(config, "probes")
    for _ in range(args.probes):
        study.enqueue_trial(BATCHED)
    optimize(config, say=say("probes"))
    trials = study.get_trials()
    probed = trials[1:]  # the first sets the incumbent; each later one probes it
    passed = [t for t in probed if t.state == COMPLETE]
    return {
        "probes": len(probed),
        "passed": len(passed),
        "probe_verdicts": [probe_verdict(t) for t in probed],
        "capacity_rps_in_order": [t.user_attrs.get("capacity_rps") for t in trials],
        "spearman_vs_order": spearman(
            [t.user_attrs["capacity_rps"] for t in trials if t.state == COMPLETE]
        ),
        "seconds_per_trial": {
            "completed": spread([seconds(t) for t in trials if t.state == COMPLETE]),
            "pruned": spread([seconds(t) for t in trials if t.state == PRUNED]),
        },
    }


def probe_verdict(trial: optuna.trial.FrozenTrial) -> str:
    """How a probe ended: its steps at the probe's rate (a near miss has two), each "pass",
    "fail" (decided) or "undecided" (and how its point estimate fell); only a decided failure
    prunes."""
    curve = [CurvePoint.from_dict(d) for d in trial.user_attrs.get("capacity_curve") or []]
    if not curve:
        return "none"
    rate = curve[0].result.target_rps
    looks = [_look(p) for p in curve if p.result.target_rps == rate]
    return " then ".join(looks)


def _look(point: CurvePoint) -> str:
    """An undecided window still passes or fails on its point estimate: say which."""
    if point.verdict.decided:
        return point.verdict.outcome
    return f"undecided ({'pass' if point.verdict.passed else 'fail'})"


def summary(results: dict) -> str:
    lines = []
    for label, r in results["pauses"].items():
        for process, p in r["processes"].items():
            lines.append(
                f"pauses {label}: {process}: {p['gc_per_minute']} collections/min, "
                f"median {p['gc_ms']['median']} ms, max {p['gc_ms']['max']} ms; loop lag max "
                f"{p['loop_lag_max_ms']} ms"
            )
        s = r["interval_spikes"]
        lines.append(f"pauses {label}: {s['spikes']} of {s['intervals']} intervals p95 > 3x median")
    interleaved = dict(results["interleaved"])
    machine = interleaved.pop("machine_vs_capacity", {})
    for kind, r in interleaved.items():
        c = r["capacity_rps"]
        lines.append(
            f"interleaved {kind}: {c['values']} req/s, CV {c['cv_percent']}%, rho vs order "
            f"{r['spearman_vs_order']}, interval holds the others' median "
            f"{r['interval_holds_others_median']} (widened by the other configurations' "
            f"spread: {r['widened_interval_holds_others_median']})"
        )
    lines.append(
        "interleaved: capacity over its configuration's median against the machine's speed "
        "in its trial: " + ", ".join(f"{attr} r = {r}" for attr, r in machine.items())
    )
    p = results["probes"]
    lines.append(
        f"probes: {p['passed']} of {p['probes']} identical configurations not pruned; their "
        f"probes: {', '.join(p.get('probe_verdicts', []))}"
    )
    for kind, s in p["seconds_per_trial"].items():
        lines.append(f"seconds per {kind} trial: median {s['median']} ({s['min']}-{s['max']})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds")
    parser.add_argument("--probes", type=int, default=6, help="identical configurations queued")
    parser.add_argument("--pause-searches", type=int, default=2, help="searches per pause run")
    parser.add_argument("--short", action="store_true", help="a few minutes: to check it works")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out")
    args = parser.parse_args(argv)
    if args.short:
        args.rounds, args.probes, args.pause_searches = 2, 3, 1
    workdir = fresh_dir(args.out / "capacity_precision")
    # The machine beside every trial: a capacity that moves is first checked against the
    # host's slow spells and what else ran (bench/machine_watch.py).
    with MachineWatch(workdir / "machine.jsonl") as watch:
        results = {
            "short": args.short,
            "pauses": run_pauses(workdir, args),
            "interleaved": run_interleaved(workdir, args),
            "probes": run_probes(workdir, args),
        }
    storage = f"sqlite:///{workdir / 'tuning.db'}"
    results["machine"] = {
        name: machine_by_phase(watch, optuna.load_study(study_name=name, storage=storage))
        for name in ("interleaved", "probes")
    }
    write_results(args.out / "capacity_precision.json", results, summary(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

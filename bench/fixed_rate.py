"""Where a capacity's spread comes from: one configuration at ONE fixed rate, many times.

A capacity search moves its rate, so two searches of the same configuration differ in the path
they took as well as in what they measured. Here the path is the same for every trial: the
study runs `--trials` trials of the same configuration through the tuner's own code (each its
own model-server restart, warm-up, ramp and Locust session, one service for the study), and
each trial measures `--steps` steps at `--rate` instead of searching. Beside it, in the tuner's
process, four probes every 0.5 s time a fixed piece of work in thread CPU time: a chain of
dependent integer operations (latency-bound: the core's clock), arithmetic over a 64 KB array
(throughput-bound: what a core shared with another thread has less of), a random gather over
8 MB (the shared L3) and over 128 MB (memory).

It reports, per step, p95 and the bench's CPU per request (model server, service, Locust),
and splits the spread of that cost into its part between trials and within a trial:

    python bench/fixed_rate.py [--rate 1900] [--trials 12] [--steps 3] [--overload 3000]
                               [--no-batching]

Writes bench/out/fixed_rate/ (the study, the probes) and bench/out/fixed_rate.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import tuner.capacity.search_run as search_run  # noqa: E402
from bench.capacity_bench import make_config  # noqa: E402
from bench.capacity_precision import BATCHED, fresh_study  # noqa: E402
from bench.study_figures import fresh_dir, say  # noqa: E402
from tuner.capacity.host_speed import loop_ms  # noqa: E402
from tuner.capacity.search import SearchOutcome  # noqa: E402
from tuner.capacity.step import CurvePoint, judge  # noqa: E402
from tuner.storage import SampleStore  # noqa: E402
from tuner.study.run import optimize  # noqa: E402
from tuner.trial_record import REFERENCE_ATTR  # noqa: E402

PROBE_PERIOD_S = 0.5
PROBES = ("core", "vector", "l3", "memory")


def fixed_rate_search(rates: list[float], windows: list[tuple[float, float]]) -> Callable:
    """A drop-in for tuner.capacity.search.search that measures one step at each of `rates`,
    in order; each window's wall-clock span goes to `windows` so the probes can be matched
    with it."""

    def run(measure_step, settings, criteria, *, on_step=None, clock=time.monotonic, **_):
        started = clock()
        outcome = SearchOutcome()
        for rate in rates:
            result = measure_step(rate)
            windows.append((time.time() - result.duration_s, time.time()))
            point = CurvePoint(len(outcome.points), result, judge(result, criteria))
            outcome.points.append(point)
            if on_step is not None:
                on_step(point)
        passed = [p for p in outcome.points if p.verdict.passed]
        outcome.capacity = passed[-1] if passed else None
        outcome.stop_reason = "fixed_rate"
        outcome.elapsed_s = clock() - started
        return outcome

    return run


def probe(path: Path, stop: threading.Event) -> None:
    """Thread CPU milliseconds of four fixed pieces of work, one JSON line per round."""
    import numpy as np

    rng = np.random.default_rng(0)
    l3, memory = rng.random(1 << 20), rng.random(1 << 24)  # 8 MB, 128 MB of float64
    at_l3, at_memory = rng.integers(0, l3.size, 1 << 17), rng.integers(0, memory.size, 1 << 17)

    vector = rng.random(1 << 14).astype(np.float32)  # 64 KB: in L2, throughput-bound

    def vector_work() -> None:
        v = vector
        for _ in range(200):
            v = v * np.float32(1.0001) + np.float32(0.5)

    def cpu_ms(work: Callable[[], object]) -> float:
        started = time.thread_time()
        work()
        return round((time.thread_time() - started) * 1000, 3)

    with path.open("w") as out:
        while not stop.wait(PROBE_PERIOD_S):
            row = {
                "t": round(time.time(), 2),
                "core": round(loop_ms(50_000), 3),
                "vector": cpu_ms(vector_work),
                "l3": cpu_ms(lambda: l3[at_l3].sum()),
                "memory": cpu_ms(lambda: memory[at_memory].sum()),
            }
            out.write(json.dumps(row) + "\n")
            out.flush()


def correlation(a: list[float], b: list[float]) -> float | None:
    if len(a) < 3 or statistics.pstdev(a) == 0 or statistics.pstdev(b) == 0:
        return None
    return round(statistics.correlation(a, b), 2)


def decompose(steps: list[dict]) -> dict:
    """The spread of a per-step figure split into its part between trials (the sd of the
    trials' means) and within one (the mean of each trial's sd), in % of the overall mean."""
    out = {}
    for key in ("cost_ms", "server_ms", "service_ms", "locust_ms", "p95_ms"):
        by_trial: dict[int, list[float]] = defaultdict(list)
        for s in steps:
            by_trial[s["trial"]].append(s[key])
        means = [statistics.fmean(v) for v in by_trial.values()]
        overall = statistics.fmean(means)
        out[key] = {
            "median": round(statistics.median(s[key] for s in steps), 3),
            "min": round(min(s[key] for s in steps), 3),
            "max": round(max(s[key] for s in steps), 3),
            "between_trials_percent": round(100 * statistics.pstdev(means) / overall, 1),
            "within_trial_percent": round(
                100 * statistics.fmean(statistics.pstdev(v) for v in by_trial.values()) / overall,
                1,
            ),
        }
    return out


def before_after(steps: list[dict]) -> dict:
    """p95 and cost of the step before the overload (step 0) and of each after it, over the
    trials: the median and the range."""
    out = {}
    for index in sorted({s["step"] for s in steps}):
        at = [s for s in steps if s["step"] == index]
        out[f"step_{index}"] = {
            key: {
                "median": round(statistics.median(s[key] for s in at), 3),
                "min": round(min(s[key] for s in at), 3),
                "max": round(max(s[key] for s in at), 3),
            }
            for key in ("p95_ms", "cost_ms")
        }
    return out


def step_rows(store: SampleStore, windows: list[tuple[float, float]], probes: list[dict]):
    """One row per measured step, matched with its window's probes (steps and windows come
    in the same order: one tuner, trials one after another)."""
    rows = []
    curve = store.read_steps("fixed")
    for step, (start, end) in zip(curve, windows, strict=False):
        done = step.completed_rps or 0.0
        if not done:
            continue
        inside = [p for p in probes if start <= p["t"] <= end] or probes
        cpu = {
            "server_ms": step.cpu_model_server_percent or 0.0,
            "service_ms": step.cpu_service_percent or 0.0,
            "locust_ms": step.cpu_load_generator_percent or 0.0,
        }
        # percent of a core at `done` req/s -> CPU milliseconds per request
        per_request = {k: 10.0 * v / done for k, v in cpu.items()}
        rows.append(
            {
                "trial": step.trial_number,
                "step": step.step,
                "rps": round(done, 1),
                "p95_ms": step.p95_ms,
                "mean_batch_size": step.mean_batch_size,
                **{k: round(v, 4) for k, v in per_request.items()},
                "cost_ms": round(sum(per_request.values()), 4),
                **{f"probe_{k}_ms": statistics.median(p[k] for p in inside) for k in PROBES},
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=1900.0, help="req/s of every step (1900)")
    parser.add_argument("--trials", type=int, default=12, help="trials of the configuration (12)")
    parser.add_argument("--steps", type=int, default=3, help="steps per trial (3)")
    parser.add_argument(
        "--overload",
        type=float,
        default=0.0,
        help="req/s of a step put second in every trial (e.g. 3000): do the steps after it "
        "read as those before? (0: none)",
    )
    parser.add_argument(
        "--no-batching", action="store_true", help="measure no batching, not max 32 / 5 ms"
    )
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    args = parser.parse_args(argv)
    args.short = False
    out = fresh_dir(REPO / "bench" / "out" / "fixed_rate")
    windows: list[tuple[float, float]] = []
    rates = [args.rate] * args.steps
    if args.overload:
        rates.insert(1, args.overload)
    search_run.search = fixed_rate_search(rates, windows)
    config = make_config(out, args, "fixed", study={"n_trials": args.trials}, confirm={"top_k": 0})
    study = fresh_study(config, "fixed")
    params = {} if args.no_batching else BATCHED
    for _ in range(args.trials):  # a reference label: never pruned
        study.enqueue_trial(params, user_attrs={REFERENCE_ATTR: "bench_repeat"})
    stop = threading.Event()
    prober = threading.Thread(target=probe, args=(out / "probes.jsonl", stop), daemon=True)
    prober.start()
    try:
        optimize(config, say=say("fixed"))
    finally:
        stop.set()
        prober.join()
    probes = [json.loads(line) for line in (out / "probes.jsonl").read_text().splitlines()]
    with SampleStore(config.study.storage) as store:
        rows = step_rows(store, windows, probes)
    steps = [s for s in rows if s["step"] != 1] if args.overload else rows
    cost = [s["cost_ms"] for s in steps]
    report = {
        "rate_rps": args.rate,
        "configuration": "no batching" if args.no_batching else "max 32, 5 ms, 2 threads",
        "rates_per_trial": rates,
        "steps": rows,
        "before_and_after_the_overload": before_after(steps) if args.overload else None,
        "spread": decompose(steps),
        "correlation_with_cost": {
            "p95_ms": correlation(cost, [s["p95_ms"] for s in steps]),
            **{
                f"probe_{k}": correlation(cost, [s[f"probe_{k}_ms"] for s in steps]) for k in PROBES
            },
        },
    }
    (REPO / "bench" / "out" / "fixed_rate.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("spread", "correlation_with_cost")}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

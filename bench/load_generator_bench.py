"""The open-loop load generator itself, against a fast stub target on loopback.

    python bench/load_generator_bench.py [--window-s 10] [--quick]

1. Accuracy: at a few rates, the achieved offered rate (arrivals sent per second) and the
   completed rate against the target, and how punctually arrivals left (share more than
   10 ms late, worst lag), with the generator's and the target's CPU.
2. Step overhead: the wall time of a step beyond its nominal warm-up + window, for a rate
   switch inside one Locust session and for a fresh Locust start (what a capacity search
   would pay per step without the control file). Medians.
3. The highest rate one Locust process sustains here: rates ramp in one session until
   arrivals are skipped, > 5% leave late, the generator uses >= 90% of a core, or the
   target falls behind (completions < 97% of arrivals: then the stub, not Locust, is the
   limit and the figure is a lower bound; the table says which).

Writes bench/out/load_generator_bench.json. The machine's other load shows up as late
arrivals; quote figures with the run's conditions.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tuner.load import LoadProfile, OpenLoopGenerator  # noqa: E402
from tuner.load.arrivals import poisson_noise  # noqa: E402
from tuner.process import free_port  # noqa: E402

STUB = REPO / "tests" / "tuner" / "load" / "stub_predict_service.py"
OUT = REPO / "bench" / "out" / "load_generator_bench.json"
INTERVAL_S = 0.5


@contextlib.contextmanager
def stub_target() -> Iterator[tuple[str, int]]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, str(STUB), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{url}/stats", timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the stub target did not start") from None
                time.sleep(0.1)
        yield url, proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def window_lag_ms(workdir: Path, step: int, warmup_intervals: int) -> float:
    """The worst lag of an arrival in the step's window, from the raw interval lines."""
    worst = 0.0
    for raw in (workdir / "intervals.jsonl").read_text().splitlines():
        line = json.loads(raw)
        if line.get("step") == step and line.get("index", -1) >= warmup_intervals:
            worst = max(worst, float(line.get("lag_max_ms", 0.0)))
    return worst


def row(result, workdir: Path, stub_pid: int, warmup_intervals: int) -> dict:
    late = (result.late or 0) / result.arrivals if result.arrivals else 0.0
    return {
        "target_rps": result.target_rps,
        "offered_rps": round(result.offered_rps_achieved, 2),
        "offered_error_pct": round(100 * (result.offered_rps_achieved / result.target_rps - 1), 2),
        "plain_poisson_sd_pct": round(100 * poisson_noise(result.target_rps, result.duration_s), 2),
        "completed_rps": round(result.rps, 2),
        "skipped": result.skipped,
        "late_pct": round(100 * late, 2),
        "lag_max_ms": window_lag_ms(workdir, result.step, warmup_intervals),
        "p50_ms": result.p50_ms,
        "p95_ms": result.p95_ms,
        "generator_cpu_pct": result.generator_cpu_percent,
        "target_cpu_pct": result.cpu_percent_by_pid.get(stub_pid),
        "generator_saturated": result.generator_saturated,
    }


def accuracy(url: str, pid: int, rates: list[float], window_s: float, work: Path) -> list[dict]:
    profile = LoadProfile(
        arrival="poisson", warmup_s=1.0, measure_s=window_s, interval_s=INTERVAL_S
    )
    rows = []
    with OpenLoopGenerator(profile, url, work, cpu_pids=lambda: [pid]) as gen:
        for rate in rates:
            rows.append(row(gen.step(rate), work, pid, profile.warmup_intervals))
            print_row("accuracy", rows[-1])
    return rows


def overhead(url: str, repeats: int, work: Path) -> dict:
    """Seconds beyond a step's nominal length: switching rate vs starting Locust afresh."""
    profile = LoadProfile(arrival="poisson", warmup_s=0.5, measure_s=1.0, interval_s=INTERVAL_S)
    nominal = profile.warmup_s + profile.measure_s
    switch, fresh, startup = [], [], []
    with OpenLoopGenerator(profile, url, work / "session") as gen:
        gen.step(100.0)
        for i in range(repeats):
            started = time.monotonic()
            gen.step(100.0 + 50.0 * (i % 2))
            switch.append(time.monotonic() - started - nominal)
    for i in range(repeats):
        started = time.monotonic()
        with OpenLoopGenerator(profile, url, work / f"fresh-{i}") as gen:
            startup.append(time.monotonic() - started)
            gen.step(100.0)
        fresh.append(time.monotonic() - started - nominal)
    result = {
        "step_switch_overhead_s": round(statistics.median(switch), 3),
        "fresh_start_overhead_s": round(statistics.median(fresh), 3),
        "locust_ready_s": round(statistics.median(startup), 3),
        "repeats": repeats,
        "switch_all_s": [round(x, 3) for x in switch],
        "fresh_all_s": [round(x, 3) for x in fresh],
    }
    print(
        f"overhead: step switch {result['step_switch_overhead_s']} s, "
        f"fresh Locust start {result['fresh_start_overhead_s']} s "
        f"(ready after {result['locust_ready_s']} s), medians of {repeats}"
    )
    return result


def max_rate(url: str, pid: int, rates: list[float], window_s: float, work: Path) -> dict:
    """Ramp in one session; a rate is sustained when nothing was skipped, <= 5% of arrivals
    left late, the generator stayed under 90% of a core and the target kept up. Contention
    from other processes makes arrivals late too, so the CPU cost per request is reported
    as well: 90% of a core divided by it is the generator's own ceiling."""
    profile = LoadProfile(
        arrival="poisson",
        warmup_s=1.0,
        measure_s=window_s,
        interval_s=INTERVAL_S,
        max_in_flight=1024,
    )
    rows = []
    with OpenLoopGenerator(profile, url, work, cpu_pids=lambda: [pid]) as gen:
        for rate in rates:
            r = row(gen.step(rate), work, pid, profile.warmup_intervals)
            ok_generator = not (r["skipped"] or r["late_pct"] > 5.0 or r["generator_saturated"])
            ok_target = r["completed_rps"] >= 0.97 * r["offered_rps"]
            r["sustained"] = ok_generator and ok_target
            r["limited_by"] = (
                None if r["sustained"] else ("target" if ok_generator else "generator")
            )
            r["generator_cpu_ms_per_request"] = (
                round(10.0 * r["generator_cpu_pct"] / r["offered_rps"], 4)
                if r["generator_cpu_pct"] and r["offered_rps"]
                else None
            )
            rows.append(r)
            print_row("ramp", r)
            if r["completed_rps"] < 0.5 * r["offered_rps"]:
                break
    passing = [r["target_rps"] for r in rows if r["sustained"]]
    costs = [r["generator_cpu_ms_per_request"] for r in rows if r["generator_cpu_ms_per_request"]]
    cost = statistics.median(costs) if costs else None
    return {
        "sustained_rps": max(passing) if passing else None,
        "first_failure": next((r["limited_by"] for r in rows if not r["sustained"]), None),
        "generator_cpu_ms_per_request": cost,
        "cpu_bound_rps": round(900.0 / cost) if cost else None,
        "steps": rows,
    }


def print_row(kind: str, r: dict) -> None:
    print(
        f"{kind}: target {r['target_rps']:g} offered {r['offered_rps']:g} "
        f"({r['offered_error_pct']:+.2f}%, plain Poisson sd {r['plain_poisson_sd_pct']}%) "
        f"completed {r['completed_rps']:g} late {r['late_pct']}% lag max {r['lag_max_ms']} ms "
        f"p95 {r['p95_ms']} ms gen CPU {r['generator_cpu_pct']}% target CPU {r['target_cpu_pct']}%",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--window-s", type=float, default=10.0, help="window per accuracy step")
    parser.add_argument("--repeats", type=int, default=5, help="steps per overhead figure")
    parser.add_argument("--quick", action="store_true", help="short windows, to check it runs")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    window = 2.0 if args.quick else args.window_s
    ramp = [250.0, 500.0, 1000.0, 1500.0, 2000.0, 2500.0, 3000.0, 4000.0, 5000.0]
    with tempfile.TemporaryDirectory(prefix="load-bench-") as tmp, stub_target() as (url, pid):
        work = Path(tmp)
        results = {
            "conditions": {
                "window_s": window,
                "interval_s": INTERVAL_S,
                "cpus": len(__import__("os").sched_getaffinity(0)),
                "loadavg_at_start": list(__import__("os").getloadavg()),
            },
            "accuracy": accuracy(url, pid, [50.0, 200.0, 500.0, 1000.0], window, work / "acc"),
            "overhead": overhead(url, 2 if args.quick else args.repeats, work / "ovh"),
            "max_rate_one_process": max_rate(url, pid, ramp, min(window, 4.0), work / "max"),
        }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2) + "\n")
    best = results["max_rate_one_process"]
    print(
        f"one Locust process sustained {best['sustained_rps']} req/s (first failure: "
        f"{best['first_failure']}); {best['generator_cpu_ms_per_request']} ms of CPU per "
        f"request, so ~{best['cpu_bound_rps']} req/s at 90% of a core; "
        f"wrote {OUT.relative_to(REPO)}"
    )


if __name__ == "__main__":
    main()

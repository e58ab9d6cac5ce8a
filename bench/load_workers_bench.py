"""What load from several machines costs: `load.workers` (remote Locust workers, here two
`python -m tuner load-worker` processes on loopback) against `load.processes` (Locust's own
forked workers), on the same fast stub target.

    python bench/load_workers_bench.py [--sessions 3] [--rate 200]

Per session (one trial's Locust): seconds from starting the generator until every
scheduler is ready (for workers: the master starts, the load-workers' fresh Locust workers
connect and spawn), then two steps, each 0.5 s warm-up + 2 s window: a step's wall time
beyond its nominal length (the switch: a control-file poll locally, a message from the
master remotely), the achieved offered rate against the target, and the window's p50.
Medians over the sessions. Writes bench/out/load_workers_bench.json. Loopback has no
network delay, so this measures the mechanism, not a LAN.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.stub_target import stub_target  # noqa: E402
from tuner.capacity.settings import load_profile  # noqa: E402
from tuner.config import load_config  # noqa: E402
from tuner.load import LoadProfile, OpenLoopGenerator  # noqa: E402
from tuner.process import free_port  # noqa: E402

STEP = dict(warmup_s=0.5, measure_s=2.0, interval_s=0.5)


@contextlib.contextmanager
def load_workers(config: Path, port: int, count: int, work: Path) -> Iterator[None]:
    procs = []
    for n in range(count):
        cmd = [sys.executable, "-m", "tuner", "load-worker", "--master", f"127.0.0.1:{port}"]
        cmd += ["--config", str(config), "--log", str(work / f"worker-{n}.log")]
        procs.append(
            subprocess.Popen(
                cmd,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd=REPO,
                start_new_session=True,
            )
        )
    try:
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def session(profile: LoadProfile, url: str, rate: float, work: Path) -> dict:
    started = time.monotonic()
    with OpenLoopGenerator(profile, url, work) as gen:
        ready_s = time.monotonic() - started
        rows = []
        for factor in (1.0, 1.5):
            t0 = time.monotonic()
            result = gen.step(rate * factor)
            rows.append(
                {
                    "overhead_s": time.monotonic() - t0 - (STEP["warmup_s"] + STEP["measure_s"]),
                    "offered_ratio": result.offered_rps_achieved / (rate * factor),
                    "p50_ms": result.p50_ms,
                }
            )
    return {"ready_s": ready_s, "steps": rows}


def summarise(sessions: list[dict]) -> dict:
    steps = [s for one in sessions for s in one["steps"]]
    return {
        "ready_s_median": statistics.median(s["ready_s"] for s in sessions),
        "ready_s_first": sessions[0]["ready_s"],
        "step_overhead_s_median": statistics.median(s["overhead_s"] for s in steps),
        "offered_ratio_min": min(s["offered_ratio"] for s in steps),
        "offered_ratio_max": max(s["offered_ratio"] for s in steps),
        "p50_ms_median": statistics.median(s["p50_ms"] for s in steps),
        "sessions": sessions,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=3)
    parser.add_argument("--rate", type=float, default=200.0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    results = {}
    with (
        tempfile.TemporaryDirectory(prefix="load-workers-bench-") as tmp,
        stub_target() as (
            url,
            _pid,
        ),
    ):
        work = Path(tmp)
        local = LoadProfile(arrival="poisson", processes=2, max_in_flight=512, **STEP)
        results["processes=2"] = summarise(
            [session(local, url, args.rate, work / f"local-{n}") for n in range(args.sessions)]
        )
        port = free_port()
        config = work / "tuner.toml"
        config.write_text(
            f"[load]\nworkers = 2\nmaster_bind_port = {port}\ninterval_s = 0.5\n"
            "step_warmup_s = 0.5\nstep_measure_s = 2.0\n"
        )
        remote = load_profile(load_config(config))  # what the tuner and workers both read
        with load_workers(config, port, 2, work):
            results["workers=2 (load-worker)"] = summarise(
                [
                    session(remote, url, args.rate, work / f"remote-{n}")
                    for n in range(args.sessions)
                ]
            )
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "load_workers_bench.json").write_text(json.dumps(results, indent=2))
    print(
        f"{'mode':26} {'ready s (median, 1st)':>22} {'step overhead s':>16} "
        f"{'offered/target':>16} {'p50 ms':>7}"
    )
    for mode, r in results.items():
        print(
            f"{mode:26} {r['ready_s_median']:>13.2f} {r['ready_s_first']:>8.2f} "
            f"{r['step_overhead_s_median']:>16.3f} "
            f"{r['offered_ratio_min']:>7.3f}-{r['offered_ratio_max']:.3f} "
            f"{r['p50_ms_median']:>7.1f}"
        )


if __name__ == "__main__":
    main()

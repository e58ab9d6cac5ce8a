"""A trial's model-server restart, forked by the launcher or exec'd: seconds and CPU.

    python bench/server_start_bench.py [--rounds 8] [--out bench/out/server_start_bench.json]

Two embedded backends on the demo model, one forking its servers from a launcher
(tuner/servers/launcher.py) and one exec'ing `python -m model_server` (TUNER_SERVER_LAUNCHER=0),
restarted in turns, each round in a random order (the machine's own drift hits both alike).
Per restart: wall seconds of `restart()` (stopping the previous server included, as a trial
pays it) and the new server's CPU seconds at AVAILABLE. The launcher's own start (its one
TensorFlow import) is reported apart: a run pays it once.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from model_server.batching_parameters import BatchingParameters  # noqa: E402
from tuner.process import free_port  # noqa: E402
from tuner.servers import EmbeddedBackend, ServerSpec  # noqa: E402
from tuner.servers.embedded import LAUNCHER_ENV  # noqa: E402

BATCHING = BatchingParameters(max_batch_size=32, batch_timeout_micros=1000, num_batch_threads=1)


def backend(model_dir: Path, forked: bool) -> EmbeddedBackend:
    spec = ServerSpec("sentiment", model_dir, free_port(), free_port(), ready_timeout_s=120.0)
    before = os.environ.get(LAUNCHER_ENV)
    os.environ[LAUNCHER_ENV] = "1" if forked else "0"
    try:
        return EmbeddedBackend(spec)
    finally:
        if before is None:
            os.environ.pop(LAUNCHER_ENV)
        else:
            os.environ[LAUNCHER_ENV] = before


def restart(server: EmbeddedBackend, workdir: Path) -> dict:
    started = time.perf_counter()
    server.restart(BATCHING, {}, workdir)
    seconds = time.perf_counter() - started
    cpu = psutil.Process(server.pids[0]).cpu_times()
    return {"seconds": round(seconds, 3), "cpu_s": round(cpu.user + cpu.system, 3)}


def summary(runs: list[dict]) -> dict:
    return {
        key: {"median": round(statistics.median(r[key] for r in runs), 3),
              "min": min(r[key] for r in runs), "max": max(r[key] for r in runs)}
        for key in ("seconds", "cpu_s")
    }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=8, help="restarts of each kind (8)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "server_start.json")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    from scripts.build_demo_model import ensure_demo_model

    ensure_demo_model(args.model_dir)
    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="server-start-bench-"))
    servers = {"forked": backend(args.model_dir, True), "exec": backend(args.model_dir, False)}
    runs: dict[str, list[dict]] = {name: [] for name in servers}
    launcher_s = None
    try:
        for number in range(args.rounds + 1):  # round 0: each backend's first start, apart
            order = list(servers)
            rng.shuffle(order)
            for name in order:
                run = restart(servers[name], workdir / f"{name}-{number}")
                if number == 0:
                    if name == "forked":
                        launcher_s = run["seconds"]
                    continue
                runs[name].append(run)
                print(f"round {number} {name}: {run}", file=sys.stderr, flush=True)
    finally:
        for server in servers.values():
            server.stop()
    report = {
        "machine": {"cores": os.cpu_count(), "load_avg": os.getloadavg()},
        "rounds": args.rounds,
        "first_forked_start_s": launcher_s,  # the launcher's import, then the first fork
        "restarts": {name: {**summary(r), "all": r} for name, r in runs.items()},
        "ratio_seconds": round(
            statistics.median(r["seconds"] for r in runs["forked"])
            / statistics.median(r["seconds"] for r in runs["exec"]),
            3,
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in report["restarts"].items():
        s, c = figures["seconds"], figures["cpu_s"]
        print(
            f"{name}: restart {s['median']} s ({s['min']}-{s['max']}), "
            f"server CPU at AVAILABLE {c['median']} s ({c['min']}-{c['max']})"
        )
    print(f"forked / exec, restart seconds: {report['ratio_seconds']}; written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

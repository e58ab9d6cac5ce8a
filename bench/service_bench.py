"""What the Starlette service costs per request: the same closed-loop load straight to the model
server over gRPC and through `python -m service` (1 and 2 uvicorn workers), without and with a
batching file on the model server, plus the access log on/off and an optional profile.

    python bench/service_bench.py [--concurrency-levels 1 16] [--measure 8] [--profile]

Writes bench/out/service_bench.json (rows, a summary, and with --profile the event loop's busy
time by package for h11+asyncio and httptools+uvloop) and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx
import orjson
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from model_server_process import ENV, Config, Server  # noqa: E402
from service_load import grpc_sender, http_sender, run_closed_loop  # noqa: E402
from service_profile import by_package  # noqa: E402

from model_server.batching_parameters import BatchingParameters, render  # noqa: E402
from tuner.process import free_port  # noqa: E402

# A CPU starting point in the spirit of TF Serving's batching guide for 2 cores.
BATCHING = BatchingParameters(
    max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=2, max_enqueued_batches=64
)


@dataclass(frozen=True)
class Variant:
    """How the service runs: uvicorn workers, access log to a file or off, HTTP parser, loop."""

    workers: int = 1
    access_log: bool = True
    http: str = "auto"
    loop: str = "auto"

    def label(self) -> str:
        impl = "httptools+uvloop" if self.http == "auto" else f"{self.http}+{self.loop}"
        return f"w={self.workers} log={'file' if self.access_log else 'off'} {impl}"


VARIANTS = (
    Variant(workers=1),
    Variant(workers=2),
    Variant(workers=1, access_log=False),
    # Before the profiler-driven fix: uvicorn's pure-Python h11 parser on the asyncio loop.
    Variant(workers=1, http="h11", loop="asyncio"),
)


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (uvicorn workers)."""
    root = psutil.Process(pid)
    total = 0.0
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


@contextlib.contextmanager
def model_server(base: Path, workdir: Path, batching: BatchingParameters | None) -> Iterator:
    server = Server(base, Config(batching), workdir)
    try:
        yield server.process, server.target
    finally:
        server.stop()


@contextlib.contextmanager
def service(
    target: str, base: Path, workdir: Path, variant: Variant, prefix: tuple[str, ...] = ()
) -> Iterator:
    port = free_port()
    access_log = str(workdir / f"access-{port}.log") if variant.access_log else "off"
    args = [
        *prefix,
        "-m",
        "service",
        f"--port={port}",
        f"--model-server={target}",
        f"--model-base-path={base}",
        f"--workers={variant.workers}",
        f"--access-log={access_log}",
        f"--http={variant.http}",
        f"--loop={variant.loop}",
        "--log-level=warning",
    ]
    with (workdir / f"service-{port}.log").open("wb") as log:
        process = subprocess.Popen([sys.executable, *args], stdout=log, stderr=log, env=ENV)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the service did not start; see {workdir}")
            time.sleep(0.2)
        yield process, port
    finally:
        # SIGINT rather than SIGTERM: uvicorn re-raises the signal after shutting down, and
        # only KeyboardInterrupt lets a profiler wrapping the process write its report.
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=60)
        stop(process)


def measure(make_sender, args, *, concurrency: int, pids: dict[str, int]) -> dict:
    before = {name: cpu_seconds(pid) for name, pid in pids.items()}
    result = asyncio.run(
        run_closed_loop(
            make_sender, concurrency=concurrency, warmup_s=args.warmup, measure_s=args.measure
        )
    )
    row = asdict(result)
    served = max(result.requests, 1)
    total_s = args.warmup + args.measure
    for name, pid in pids.items():
        # CPU over warm-up + window, per request answered in the window (same ratio of both).
        spent = cpu_seconds(pid) - before[name]
        row[f"{name}_cpu_ms_per_req"] = round(1000 * spent * args.measure / total_s / served, 3)
    return row


def run_all(args: argparse.Namespace, workdir: Path) -> tuple[list[dict], dict]:
    from scripts.build_demo_model import ensure_demo_model
    from service.client import ModelClient
    from service.corpus import generate
    from service.text import Vocabulary

    base = REPO / "models" / "sentiment"
    ensure_demo_model(base)
    texts = [text for text, _ in generate(400, seed=7)]
    vocabulary = Vocabulary.from_model_dir(base)
    builder = ModelClient("unused", "sentiment", deadline_s=10)
    requests = [builder.build_request(vocabulary.encode_batch([t])) for t in texts]
    bodies = [orjson.dumps({"text": t}) for t in texts]
    rows: list[dict] = []
    profiles: dict = {}

    def record(row: dict, batching: str, path: str, variant: Variant | None) -> None:
        labels = {"batching": batching, "path": path}
        labels.update(asdict(variant) if variant else {"workers": 0})
        rows.append({**labels, **row})
        print(
            f"  batching={batching:<3} {path:<7} {variant.label() if variant else '':<32}"
            f" c={row['concurrency']:>2} rps={row['rps']:>7} p50={row['p50_ms']}"
            f" p95={row['p95_ms']} client_cpu={row['client_cpu_percent']}%"
            f" svc_ms/req={row.get('svc_cpu_ms_per_req', '-')} fail={row['failures']}",
            flush=True,
        )

    for name, batching in (("off", None), ("on", BATCHING)):
        with model_server(base, workdir, batching) as (server, target):
            # Warm TensorFlow up (first batches are slow) before the first measured run.
            asyncio.run(
                run_closed_loop(
                    grpc_sender(target, requests), concurrency=8, warmup_s=0, measure_s=3
                )
            )
            for conc in args.concurrency_levels:
                make = grpc_sender(target, requests)
                row = measure(make, args, concurrency=conc, pids={"ms": server.pid})
                record(row, name, "grpc", None)
            for variant in VARIANTS if batching is None else VARIANTS[:2]:
                with service(target, base, workdir, variant) as (svc, port):
                    for conc in args.concurrency_levels:
                        make = http_sender("127.0.0.1", port, "/predict", bodies)
                        pids = {"ms": server.pid, "svc": svc.pid}
                        row = measure(make, args, concurrency=conc, pids=pids)
                        record(row, name, "service", variant)
            if args.profile and batching is None:
                for variant in (VARIANTS[0], VARIANTS[3]):
                    profiles[variant.label()] = profile(
                        args, base, target, workdir, bodies, variant
                    )
    return rows, profiles


def profile(args, base: Path, target: str, workdir: Path, bodies: list[bytes], variant) -> dict:
    """One load run against the service under pyinstrument; event-loop time by package."""
    session_path = workdir / f"profile-{variant.http}.pyisession"
    prefix = ("-m", "pyinstrument", "-r", "pyisession", "-o", str(session_path))
    with service(target, base, workdir, variant, prefix=prefix) as (_, port):
        result = asyncio.run(
            run_closed_loop(
                http_sender("127.0.0.1", port, "/predict", bodies),
                concurrency=max(args.concurrency_levels),
                warmup_s=args.warmup,
                measure_s=args.measure,
            )
        )
    shares = by_package(session_path)
    print(f"  profile {variant.label()}: rps={result.rps} (under the profiler)")
    for group, share in list(shares.items())[:10]:
        print(f"    {share:5.1f}%  {group}")
    return {"rps_under_profiler": result.rps, "busy_loop_share_percent": shares}


def table(rows: list[dict]) -> str:
    head = (
        "| batching | path | workers | access log | HTTP + loop | users | req/s | p50 ms | p95 ms "
        "| failures | client CPU % | service CPU ms/req | model server CPU ms/req |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        service = r["path"] == "service"
        impl = "httptools+uvloop" if r.get("http") == "auto" else f"{r.get('http')}+{r.get('loop')}"
        lines.append(
            f"| {r['batching']} | {r['path']} | {r['workers'] if service else '-'} "
            f"| {('file' if r['access_log'] else 'off') if service else '-'} "
            f"| {impl if service else '-'} | {r['concurrency']} | {r['rps']} | {r['p50_ms']} "
            f"| {r['p95_ms']} | {r['failures']} | {r['client_cpu_percent']} "
            f"| {r.get('svc_cpu_ms_per_req', '-')} | {r.get('ms_cpu_ms_per_req', '-')} |"
        )
    return "\n".join(lines)


def summary(rows: list[dict], concurrency_levels: list[int]) -> dict:
    """The headline comparisons, all without batching so the model server is the same."""
    low, high = min(concurrency_levels), max(concurrency_levels)

    def find(path: str, users: int, **variant: object) -> dict:
        wanted = {"batching": "off", "path": path, "concurrency": users, **variant}
        for r in rows:
            if all(r.get(k) == v for k, v in wanted.items()):
                return r
        raise KeyError((path, users, variant))

    fast = {"workers": 1, "access_log": True, "http": "auto"}
    grpc_low, svc_low = find("grpc", low), find("service", low, **fast)
    svc_high = find("service", high, **fast)
    no_log = find("service", high, workers=1, access_log=False, http="auto")
    h11 = find("service", high, workers=1, access_log=True, http="h11")
    return {
        f"p50_overhead_ms_at_{low}_user": round(svc_low["p50_ms"] - grpc_low["p50_ms"], 3),
        "service_cpu_ms_per_request": svc_high["svc_cpu_ms_per_req"],
        f"rps_grpc_vs_service_at_{high}_users": [find("grpc", high)["rps"], svc_high["rps"]],
        "access_log_cpu_ms_per_request_on_off": [
            svc_high["svc_cpu_ms_per_req"],
            no_log["svc_cpu_ms_per_req"],
        ],
        "access_log_rps_on_off": [svc_high["rps"], no_log["rps"]],
        "h11_asyncio_vs_httptools_uvloop_rps": [h11["rps"], svc_high["rps"]],
        "h11_asyncio_vs_httptools_uvloop_cpu_ms_per_request": [
            h11["svc_cpu_ms_per_req"],
            svc_high["svc_cpu_ms_per_req"],
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--concurrency-levels", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--measure", type=float, default=8.0, help="seconds measured per run")
    parser.add_argument("--profile", action="store_true", help="also profile the service")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "service_bench.json")
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="service-bench-") as tmp:
        started, load = time.time(), os.getloadavg()
        rows, profiles = run_all(args, Path(tmp))
    report = {
        "started": started,
        "machine": {"cpus": os.cpu_count(), "load_avg_at_start": load},
        "batching_file": render(BATCHING).strip(),
        "warmup_s": args.warmup,
        "measure_s": args.measure,
        "summary": summary(rows, args.concurrency_levels),
        "rows": rows,
        "profiles": profiles,
    }
    args.out.write_text(json.dumps(report, indent=2))
    print(table(rows))
    print(json.dumps(report["summary"], indent=2))
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What server-side batching buys on the demo model: the embedded model server driven by N
concurrent gRPC clients for a fixed time, without and with a batching file (each with
TensorFlow's default threads and with one intra-/inter-op thread), plus the median time from
process start to AVAILABLE.

    python bench/model_server_bench.py [--clients 64] [--seconds 15] [--starts 3]
                                       [--processes 2] [--repeats 1] [--sweep]

The load runs in `--processes` separate processes (grpc.aio, closed loop, pre-serialized
requests, responses left as bytes) so that the client, which shares the machine's cores with
the server, stays cheap; its CPU use is measured and reported, and so is the CPU everything
else on the machine used meanwhile ("other CPU %": figures taken while it is high are noise).
`--sweep` also measures the candidate batching files the default was chosen from. Writes
bench/out/model_server_bench.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from model_server_process import MODEL, Config, Server  # noqa: E402

from model_server.batching_parameters import BatchingParameters, render  # noqa: E402

PREDICT = "/tensorflow.serving.PredictionService/Predict"


def _batching(max_batch: int, timeout_us: int, threads: int) -> BatchingParameters:
    return BatchingParameters(
        max_batch_size=max_batch,
        batch_timeout_micros=timeout_us,
        num_batch_threads=threads,
        max_enqueued_batches=64,
    )


# TensorFlow's default is one intra-op and one inter-op thread per core; for this small
# recurrent model, handing each op to a pool costs more than it saves (see the README).
ONE_TF_THREAD = ("--tensorflow_intra_op_parallelism=1", "--tensorflow_inter_op_parallelism=1")
# Chosen with --sweep on a 2-core machine (see the README): with 64 clients the queue refills
# while a batch runs, so no timeout is needed, and one batch thread makes the largest batches.
BATCHING = _batching(64, 0, 1)
DEFAULT_RUNS = {
    "no_batching": Config(None),
    "batching": Config(BATCHING),
    "no_batching_1tf": Config(None, ONE_TF_THREAD),
    "batching_1tf": Config(BATCHING, ONE_TF_THREAD),
}
SWEEP = {
    "max32_t0_bt2": Config(_batching(32, 0, 2)),
    "max32_t2ms_bt2": Config(_batching(32, 2000, 2)),
    "max64_t1ms_bt1": Config(_batching(64, 1000, 1)),
    "max64_t0_bt2": Config(_batching(64, 0, 2)),
    "max64_t0_bt2_1tf": Config(_batching(64, 0, 2), ONE_TF_THREAD),
    "max32_t1ms_bt2_1tf": Config(_batching(32, 1000, 2), ONE_TF_THREAD),
    "max128_t0_bt1_1tf": Config(_batching(128, 0, 1), ONE_TF_THREAD),
}

# --- the load -------------------------------------------------------------------------------


def build_requests(model_dir: Path, count: int = 256) -> list[bytes]:
    """Serialized one-row PredictRequests for realistic texts (TensorFlow stays in the parent)."""
    from tensorflow_serving.apis import predict_pb2

    from service.corpus import generate
    from service.text import Vocabulary

    rows = Vocabulary.from_model_dir(model_dir).encode_batch([t for t, _ in generate(count)])
    requests = []
    for row in rows:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = MODEL
        tensor = request.inputs["tokens"]
        tensor.dtype = 3  # DT_INT32
        tensor.tensor_shape.dim.add().size = 1
        tensor.tensor_shape.dim.add().size = row.shape[0]
        tensor.tensor_content = row.astype("<i4").tobytes()
        requests.append(request.SerializeToString())
    return requests


def check_answer(target: str, request: bytes) -> None:
    """One real, parsed answer before any timing: a fast wrong server is no result."""
    from tensorflow_serving.apis import predict_pb2

    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(PREDICT)
        response = predict_pb2.PredictResponse.FromString(call(request, timeout=30))
    probabilities = np.frombuffer(response.outputs["probabilities"].tensor_content, "<f4")
    assert probabilities.shape == (3,) and abs(float(probabilities.sum()) - 1) < 1e-3


async def _closed_loop(
    target: str, requests: list[bytes], users: int, start: float, warmup: float, seconds: float
) -> dict:
    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(PREDICT)  # bytes in, bytes out: no protobuf work
        await call(requests[0], timeout=30)
        window_start, window_end = start + warmup, start + warmup + seconds
        latencies: list[float] = []
        errors: dict[str, int] = {}
        cpu: list[float] = []

        async def user(offset: int) -> None:
            index = offset
            while (begun := time.time()) < window_end:
                sent = time.perf_counter()
                try:
                    await call(requests[index % len(requests)], timeout=30)
                    code = None
                except grpc.aio.AioRpcError as exc:
                    code = exc.code().name
                index += users
                if begun >= window_start:  # only requests sent inside the window count
                    if code is None:
                        latencies.append(time.perf_counter() - sent)
                    else:
                        errors[code] = errors.get(code, 0) + 1

        async def mark() -> None:
            await asyncio.sleep(max(0.0, window_start - time.time()))
            cpu.append(_cpu())

        await asyncio.sleep(max(0.0, start - time.time()))
        await asyncio.gather(mark(), *(user(i) for i in range(users)))
        cpu.append(_cpu())
    return {"latencies": latencies, "errors": errors, "cpu_s": cpu[1] - cpu[0]}


def _machine_busy_seconds() -> float:
    """CPU seconds all cores spent busy since boot (/proc/stat), to spot other load."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _load_process(args: tuple) -> dict:
    return asyncio.run(_closed_loop(*args))


def measure(server: Server, requests: list[bytes], args: argparse.Namespace, pool) -> dict:
    check_answer(server.target, requests[0])
    start = time.time() + 2.0  # every load process is up and connected by then
    shares = [args.clients // args.processes] * args.processes
    shares[0] += args.clients - sum(shares)
    jobs = [
        (server.target, requests[i :: args.processes], n, start, args.warmup, args.seconds)
        for i, n in enumerate(shares)
    ]
    pending = pool.map_async(_load_process, jobs)
    time.sleep(max(0.0, start + args.warmup - time.time()))
    batch_before, cpu_before = server.batch_sizes(), server.cpu_seconds()
    busy_before = _machine_busy_seconds()
    time.sleep(max(0.0, start + args.warmup + args.seconds - time.time()))
    batch_after, cpu_after = server.batch_sizes(), server.cpu_seconds()
    busy = _machine_busy_seconds() - busy_before
    results = pending.get(timeout=args.warmup + args.seconds + 120)
    ms = np.array([lat for r in results for lat in r["latencies"]]) * 1000
    errors: dict[str, int] = {}
    for r in results:
        for code, n in r["errors"].items():
            errors[code] = errors.get(code, 0) + n
    if not len(ms):
        raise RuntimeError(f"no request succeeded: {errors}; see {server.log_path}")
    batches = batch_after[1] - batch_before[1]
    client_cpu = sum(r["cpu_s"] for r in results)
    p50, p95, p99 = (round(float(v), 2) for v in np.percentile(ms, [50, 95, 99]))
    return {
        "rps": round(len(ms) / args.seconds, 1),
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "failed": sum(errors.values()),
        "errors": errors,
        "mean_batch_size": round((batch_after[0] - batch_before[0]) / batches, 2)
        if batches
        else None,
        "client_cpu_percent": round(100 * client_cpu / args.seconds, 1),
        "server_cpu_percent": round(100 * (cpu_after - cpu_before) / args.seconds, 1),
        # Everything else on the machine meanwhile: high values mean the figures are noisy.
        "other_cpu_percent": round(
            100 * max(0.0, busy - client_cpu - (cpu_after - cpu_before)) / args.seconds, 1
        ),
        # Less sensitive to other load on the machine than req/s: the server's work per request.
        "server_cpu_us_per_request": round(1e6 * (cpu_after - cpu_before) / len(ms)),
    }


# --- the run --------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument("--seconds", type=float, default=15.0, help="measured seconds (15)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds (3)")
    parser.add_argument("--starts", type=int, default=3, help="starts timed to AVAILABLE (3)")
    parser.add_argument("--processes", type=int, default=2, help="load processes (2)")
    parser.add_argument("--sweep", action="store_true", help="also try the candidate files")
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs per config; the least disturbed is shown (1)"
    )
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument(
        "--out", type=Path, default=REPO / "bench" / "out" / "model_server_bench.json"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    load_before = os.getloadavg()
    from scripts.build_demo_model import ensure_demo_model

    ensure_demo_model(args.model_dir)
    requests = build_requests(args.model_dir)
    configs = dict(DEFAULT_RUNS)
    if args.sweep:
        configs.update(SWEEP)
    workdir = Path(tempfile.mkdtemp(prefix="model-server-bench-"))
    context = multiprocessing.get_context("spawn")
    with context.Pool(args.processes) as pool:
        starts = []
        for _ in range(args.starts):
            server = Server(args.model_dir, Config(None), workdir)
            starts.append(server.started_s)
            server.stop()
        repeats: dict[str, list[dict]] = {name: [] for name in configs}
        for _ in range(args.repeats):  # round-robin, so a burst of other load hits one repeat
            for name, config in configs.items():
                server = Server(args.model_dir, config, workdir)
                try:
                    repeats[name].append(measure(server, requests, args, pool))
                finally:
                    server.stop()
                print(f"{name}: {repeats[name][-1]}", file=sys.stderr, flush=True)
    # The machine is shared: report each config's least disturbed repeat (chosen by the CPU
    # other processes used meanwhile, not by the result); the JSON keeps every repeat.
    runs = {
        name: {
            "batching": render(config.batching) if config.batching else None,
            "flags": list(config.flags),
            **min(repeats[name], key=lambda run: run["other_cpu_percent"]),
            "repeats": repeats[name],
        }
        for name, config in configs.items()
    }
    report = {
        "machine": {
            "cores": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "load_avg_before": load_before,
        },
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "start_to_available_s": {
            "median": round(statistics.median(starts), 2),
            "all": [round(s, 2) for s in starts],
        },
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print_table(report)
    print(f"\nwritten to {args.out}")
    return 0


COLUMNS = {
    "req/s": "rps",
    "p50 ms": "p50_ms",
    "p95 ms": "p95_ms",
    "p99 ms": "p99_ms",
    "mean batch": "mean_batch_size",
    "errors": "failed",
    "client CPU %": "client_cpu_percent",
    "server CPU %": "server_cpu_percent",
    "server CPU us/req": "server_cpu_us_per_request",
    "other CPU %": "other_cpu_percent",
}


def print_table(report: dict) -> None:
    start = report["start_to_available_s"]
    print(
        f"{report['machine']['cores']} cores; start to AVAILABLE: median {start['median']} s "
        f"over {len(start['all'])} starts\n"
    )
    print(" | ".join(["config", *COLUMNS]))
    print(" | ".join("---" for _ in range(len(COLUMNS) + 1)))
    for name, run in report["runs"].items():
        print(" | ".join([name, *(str(run[key]) for key in COLUMNS.values())]))


if __name__ == "__main__":
    raise SystemExit(main())

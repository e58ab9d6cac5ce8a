"""Where the embedded server's time goes besides TensorFlow: three ceilings and one cost.

    python bench/server_overhead.py [--clients 64] [--seconds 10] [--requests 20000]

- `echo`: a bare grpc.aio server answering Predict with a fixed response (no parsing): the
  most one Python event loop serves here under the benchmark's load;
- `stub` / `stub_batched`: this server's own gRPC handler (request parsing, signature check,
  batcher, response building) with the model replaced by a function returning constant
  probabilities, without and with batching (max 64, timeout 0, 1 thread): the ceiling of
  everything but TensorFlow;
- `batcher`: in-process, the CPU one request costs going through the Batcher (queue,
  scheduler, thread hand-off, concatenate and split) with a no-op model, next to the same
  coroutines handing each request to a thread pool directly.

The load is model_server_bench.py's (closed loop, separate processes, CPU accounted).
Writes bench/out/server_overhead.json and prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import socket
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO), str(REPO / "bench")]

from model_server_bench import build_requests, measure  # noqa: E402
from model_server_process import ENV  # noqa: E402

from model_server.batching_parameters import BatchingParameters  # noqa: E402
from tuner.process import free_port, stop_child  # noqa: E402

STUB_BATCHING = BatchingParameters(
    max_batch_size=64, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=64
)


def _constant_response() -> bytes:
    from tensorflow_serving.apis import predict_pb2

    response = predict_pb2.PredictResponse()
    tensor = response.outputs["probabilities"]
    tensor.dtype = 1  # DT_FLOAT
    tensor.tensor_shape.dim.add(size=1)
    tensor.tensor_shape.dim.add(size=3)
    tensor.tensor_content = np.full(3, 1 / 3, "<f4").tobytes()
    return response.SerializeToString()


async def _serve(mode: str, port: int, model_dir: Path) -> None:
    import grpc

    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    if mode == "echo":
        answer = _constant_response()

        async def predict(request: bytes, context) -> bytes:
            return answer

        handler = grpc.method_handlers_generic_handler(
            "tensorflow.serving.PredictionService",
            {"Predict": grpc.unary_unary_rpc_method_handler(predict)},
        )
        server.add_generic_rpc_handlers((handler,))
    else:
        from model_server.grpc_api import add_services
        from model_server.metrics import ServerMetrics
        from model_server.model import load_model
        from model_server.servable import Servable

        model = load_model("sentiment", model_dir)
        for signature in model.signatures.values():
            outputs = list(signature.outputs)

            def stub(inputs: dict[str, np.ndarray], outputs=outputs) -> dict[str, np.ndarray]:
                rows = len(next(iter(inputs.values())))
                return {name: np.full((rows, 3), 1 / 3, np.float32) for name in outputs}

            signature.run = stub  # type: ignore[method-assign]
        batching = STUB_BATCHING if mode == "stub_batched" else None
        servable = Servable("sentiment", batching, ServerMetrics("sentiment"))
        servable.set_loaded(model)
        add_services(server, servable)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


class _Process:
    """What model_server_bench.measure needs of a server: target, CPU, batch sizes, log."""

    def __init__(self, mode: str, model_dir: Path, workdir: Path) -> None:
        self.port = free_port()
        self.log_path = workdir / f"{mode}.log"
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", mode, "--port", str(self.port)],
            stdout=subprocess.PIPE,
            stderr=self.log_path.open("wb"),
            env=ENV,
            text=True,
        )
        assert self.process.stdout is not None
        if self.process.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{mode} server did not start; see {self.log_path}")
        with socket.create_connection(("127.0.0.1", self.port), timeout=10):
            pass

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def batch_sizes(self) -> tuple[float, float]:
        return 0.0, 0.0

    def cpu_seconds(self) -> float:
        usage = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(usage[11]) + int(usage[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_child(self.process, 20)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _batcher_cost(total: int, users: int) -> dict:
    """CPU µs per request through the Batcher (no-op model) and through a bare thread pool."""
    from model_server.batcher import Batcher
    from model_server.metrics import ServerMetrics

    def noop(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"y": inputs["x"]}

    request = {"x": np.zeros((1, 50), np.int32)}

    async def drive(submit) -> float:
        remaining = [total]

        async def user() -> None:
            while remaining[0] > 0:
                remaining[0] -= 1
                await submit(request)

        started = _cpu()
        await asyncio.gather(*(user() for _ in range(users)))
        return 1e6 * (_cpu() - started) / total

    batcher = Batcher(STUB_BATCHING, noop, metrics=ServerMetrics("m").batching, model_name="m")
    await drive(batcher.submit)  # warm-up
    through_batcher = await drive(batcher.submit)
    await batcher.close()
    pool = ThreadPoolExecutor(1)
    loop = asyncio.get_running_loop()

    async def direct(inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return await loop.run_in_executor(pool, noop, inputs)

    await drive(direct)
    through_pool = await drive(direct)
    pool.shutdown()
    return {
        "batcher_cpu_us_per_request": round(through_batcher, 1),
        "thread_pool_cpu_us_per_request": round(through_pool, 1),
        "requests": total,
        "users": users,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", choices=("echo", "stub", "stub_batched"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--clients", type=int, default=64, help="concurrent clients (64)")
    parser.add_argument("--seconds", type=float, default=10.0, help="measured seconds (10)")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds (3)")
    parser.add_argument("--processes", type=int, default=2, help="load processes (2)")
    parser.add_argument("--requests", type=int, default=20000, help="batcher requests (20000)")
    parser.add_argument("--model-dir", type=Path, default=REPO / "models" / "sentiment")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "server_overhead.json")
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(_serve(args.serve, args.port, args.model_dir))
        return 0

    from scripts.build_demo_model import ensure_demo_model

    ensure_demo_model(args.model_dir)
    requests = build_requests(args.model_dir)
    workdir = Path(tempfile.mkdtemp(prefix="server-overhead-"))
    ceilings = {}
    with multiprocessing.get_context("spawn").Pool(args.processes) as pool:
        for mode in ("echo", "stub", "stub_batched"):
            server = _Process(mode, args.model_dir, workdir)
            try:
                ceilings[mode] = measure(server, requests, args, pool)  # type: ignore[arg-type]
            finally:
                server.stop()
            print(f"{mode}: {ceilings[mode]}", file=sys.stderr, flush=True)
    batcher = asyncio.run(_batcher_cost(args.requests, args.clients))
    report = {"load_avg": os.getloadavg(), "ceilings": ceilings, "batcher": batcher}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print("| server | req/s | p50 ms | server µs/req | other CPU % |")
    print("|---|---|---|---|---|")
    for mode, run in ceilings.items():
        print(
            f"| {mode} | {run['rps']:,} | {run['p50_ms']} | {run['server_cpu_us_per_request']} "
            f"| {run['other_cpu_percent']} |"
        )
    print(
        f"\nper request, in-process, no-op model: Batcher {batcher['batcher_cpu_us_per_request']}"
        f" µs CPU, a bare thread-pool hand-off {batcher['thread_pool_cpu_us_per_request']} µs"
    )
    print(f"\nwritten to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""One `python -m model_server` for the benchmarks, on free loopback ports: how it was
launched, when it became AVAILABLE, its CPU time and its executed batch sizes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx

from model_server.batching_parameters import BatchingParameters, render
from tuner.process import free_port, stop_child
from tuner.servers.defaults import METRICS_PATH
from tuner.servers.readiness import model_state

MODEL = "sentiment"
PROCESSED = ":tensorflow:serving:batching_session:processed_batch_size"
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True)
class Config:
    batching: BatchingParameters | None  # None: no --enable_batching
    flags: tuple[str, ...] = ()


FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 100),
]


class Server:
    """One `python -m model_server` on free loopback ports; `started_s` = launch to AVAILABLE."""

    def __init__(self, model_dir: Path, config: Config, workdir: Path):
        self.grpc_port, self.rest_port = free_port(), free_port()
        args = [
            f"--port={self.grpc_port}",
            f"--rest_api_port={self.rest_port}",
            f"--model_name={MODEL}",
            f"--model_base_path={model_dir}",
        ]
        if config.batching is not None:
            path = workdir / f"batching-{self.grpc_port}.txt"
            path.write_text(render(config.batching))
            args += ["--enable_batching", f"--batching_parameters_file={path}"]
        args += config.flags
        self.log_path = workdir / f"server-{self.grpc_port}.log"
        launched = time.perf_counter()
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "model_server", *args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=ENV,
            )
        try:
            self._wait_available(timeout=120)
        except BaseException:
            self.stop()
            raise
        self.started_s = time.perf_counter() - launched

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def _wait_available(self, timeout: float) -> None:
        """Poll every 20 ms with fast reconnects, so the figure is the server's, not the poll's."""
        deadline = time.monotonic() + timeout
        with grpc.insecure_channel(self.target, options=FAST_RECONNECT) as channel:
            while model_state(channel, MODEL) != "AVAILABLE":
                if self.process.poll() is not None:
                    raise RuntimeError(f"model server exited; see {self.log_path}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"model server not AVAILABLE after {timeout} s")
                time.sleep(0.02)

    def batch_sizes(self) -> tuple[float, float]:
        """(sum, count) of the processed_batch_size histogram."""
        text = httpx.get(f"http://127.0.0.1:{self.rest_port}{METRICS_PATH}").text
        values = {}
        for line in text.splitlines():
            if line.startswith(f"{PROCESSED}_sum") or line.startswith(f"{PROCESSED}_count"):
                name, value = line.rsplit(" ", 1)
                values[name.split("{")[0].rsplit("_", 1)[1]] = float(value)
        return values.get("sum", 0.0), values.get("count", 0.0)

    def cpu_seconds(self) -> float:
        usage = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(usage[11]) + int(usage[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        stop_child(self.process, 30)

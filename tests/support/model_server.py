"""Running a real `python -m model_server` on loopback for a test, and always stopping it."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from model_server.batching_parameters import BatchingParameters, render
from tuner.process import free_port
from tuner.servers.readiness import wait_until_available


@dataclass
class ModelServerProcess:
    """One embedded model server process; `start_again` reuses its ports, as the tuner does."""

    args: list[str]
    grpc_port: int
    rest_port: int
    model_name: str
    log_path: Path
    ready_timeout: float
    process: subprocess.Popen | None = None
    _log_file: object = field(default=None, repr=False)

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.rest_port}"

    def launch(self) -> None:
        """Start the process without waiting for readiness (for tests of start-up failures)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        log = self.log_path.open("ab")
        self._log_file = log
        self.process = subprocess.Popen(
            [sys.executable, "-m", "model_server", *self.args],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
        )

    def start_again(self) -> None:
        self.launch()
        self.wait_ready()

    def wait_ready(self) -> None:
        assert self.process is not None
        try:
            wait_until_available(
                self.grpc_target,
                self.model_name,
                timeout=self.ready_timeout,
                process=self.process,
            )
        except Exception as exc:
            raise AssertionError(f"{exc}; server log:\n{self.log_text()[-4000:]}") from exc

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, bounded wait, then SIGKILL; returns the exit code."""
        proc = self.process
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        if self._log_file is not None:
            self._log_file.close()  # type: ignore[attr-defined]
            self._log_file = None
        return proc.returncode

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


def model_server_args(
    model_base_path: Path,
    *,
    grpc_port: int,
    rest_port: int,
    model_name: str,
    batching_file: Path | None,
    enable_batching: bool,
    extra_args: Sequence[str],
) -> list[str]:
    args = [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        f"--model_name={model_name}",
        f"--model_base_path={model_base_path}",
    ]
    if enable_batching:
        args.append("--enable_batching")
    if batching_file is not None:
        args.append(f"--batching_parameters_file={batching_file}")
    return [*args, *extra_args]


@contextlib.contextmanager
def running_model_server(
    model_base_path: Path,
    *,
    model_name: str = "sentiment",
    batching: BatchingParameters | None = None,
    enable_batching: bool | None = None,
    extra_args: Sequence[str] = (),
    rest: bool = True,
    ready_timeout: float = 90.0,
    wait: bool = True,
) -> Iterator[ModelServerProcess]:
    """A model server on free loopback ports; batching is on when `batching` is given. Its
    batching file and log live in a temporary directory, removed once the server has stopped."""
    with tempfile.TemporaryDirectory(prefix="model-server-") as tmp:
        workdir = Path(tmp)
        batching_file = None
        if batching is not None:
            batching_file = workdir / "batching_parameters.txt"
            batching_file.write_text(render(batching))
        if enable_batching is None:
            enable_batching = batching is not None
        grpc_port = free_port()
        rest_port = free_port() if rest else 0
        server = ModelServerProcess(
            args=model_server_args(
                Path(model_base_path),
                grpc_port=grpc_port,
                rest_port=rest_port,
                model_name=model_name,
                batching_file=batching_file,
                enable_batching=enable_batching,
                extra_args=extra_args,
            ),
            grpc_port=grpc_port,
            rest_port=rest_port,
            model_name=model_name,
            log_path=workdir / "server.log",
            ready_timeout=ready_timeout,
        )
        server.launch()
        try:
            if wait:
                server.wait_ready()
            yield server
        finally:
            server.stop()

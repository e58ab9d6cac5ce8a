"""Fixtures for the service tests: the app run in-process with its lifespan, and `python -m
service` run for real as a subprocess on a free port. The real model server they share is the
session's (`shared_model_server`, tests/conftest.py)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from service.config import Settings
from tuner.process import free_port

REPO_ROOT = Path(__file__).resolve().parents[2]

Scenario = Callable[[httpx.AsyncClient], Awaitable[Any]]


@pytest.fixture
def settings_for(demo_model_dir: Path, tmp_path: Path) -> Callable[..., Settings]:
    """`settings_for(target, **overrides)`: settings pointing at a model server, log in tmp."""

    def make(target: str, **overrides: Any) -> Settings:
        base = Settings(
            model_server=target,
            model_base_path=demo_model_dir,
            access_log=str(tmp_path / "access.log"),
        )
        return replace(base, **overrides)

    return make


def run_in_app(settings: Settings, scenario: Scenario) -> Any:
    """Run `scenario(client)` against the app in-process, lifespan included."""

    from service.app import create_app  # imports TensorFlow (via the TF Serving protos)

    async def main() -> Any:
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
                return await scenario(client)

    return asyncio.run(main())


@dataclass
class ServiceProcess:
    url: str
    process: subprocess.Popen
    log_path: Path
    stderr_path: Path

    def access_lines(self) -> list[dict[str, Any]]:
        import orjson

        if not self.log_path.exists():
            return []
        return [orjson.loads(line) for line in self.log_path.read_bytes().splitlines() if line]

    def stderr_text(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def log_events(self, event: str) -> list[dict[str, Any]]:
        """The service's own JSON log lines (on stderr) with this `event`."""
        import orjson

        events = []
        for line in self.stderr_text().splitlines():
            if line.startswith("{"):
                record = orjson.loads(line)
                if record.get("event") == event:
                    events.append(record)
        return events

    def stop(self, timeout: float = 20.0) -> int | None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        return self.process.returncode


@contextlib.contextmanager
def running_service(
    model_server_target: str,
    model_base_path: Path,
    workdir: Path,
    *extra_args: str,
    start_timeout: float = 60.0,
) -> Iterator[ServiceProcess]:
    """`python -m service` on a free loopback port, stopped (SIGTERM, then kill) afterwards."""
    port = free_port()
    log_path = workdir / f"service-{port}.access.log"
    stderr_path = workdir / f"service-{port}.stderr"
    args = [
        sys.executable,
        "-m",
        "service",
        "--port",
        str(port),
        "--model-server",
        model_server_target,
        "--model-base-path",
        str(model_base_path),
        "--access-log",
        str(log_path),
        *extra_args,
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SERVICE_")}
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            args, cwd=REPO_ROOT, stdout=stderr, stderr=subprocess.STDOUT, env=env
        )
    service = ServiceProcess(f"http://127.0.0.1:{port}", process, log_path, stderr_path)
    try:
        deadline = time.monotonic() + start_timeout
        while True:
            if process.poll() is not None:
                raise AssertionError(
                    f"the service exited with {process.returncode}:\n{service.stderr_text()}"
                )
            try:
                if httpx.get(f"{service.url}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"the service did not start:\n{service.stderr_text()}")
            time.sleep(0.1)
        yield service
    finally:
        service.stop()


def wait_ready(url: str, timeout: float) -> float:
    """Poll /readyz until 200; returns the seconds it took."""
    started = time.monotonic()
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=3.0).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{url} was not ready after {timeout} s")
        time.sleep(0.1)


@pytest.fixture
def in_app() -> Callable[[Settings, Scenario], Any]:
    return run_in_app


@pytest.fixture
def service_process(
    demo_model_dir: Path, tmp_path: Path
) -> Callable[..., contextlib.AbstractContextManager[ServiceProcess]]:
    """`with service_process(target, *args) as svc:` runs `python -m service` for real."""

    def start(target: str, *extra_args: str) -> contextlib.AbstractContextManager[ServiceProcess]:
        return running_service(target, demo_model_dir, tmp_path, *extra_args)

    return start


@pytest.fixture
def ready_waiter() -> Callable[[str, float], float]:
    return wait_ready

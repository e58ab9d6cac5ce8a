"""`python -m service` run for real: surviving a model-server restart, timing logs under load."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.support.model_server import ModelServerProcess
from tests.support.server_timing import parse_server_timing

TEXTS = [
    "What an amazing flight, the staff were so friendly!",
    "@support the delivery was terrible, I want a refund",
    "The package arrived on Tuesday.",
    "meh, it's fine i guess",
    "Can't believe how fast the delivery was!!! thank you",
]


class Prober(threading.Thread):
    """Sends requests one after another until stopped; records (start, elapsed, status, code)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.results: list[tuple[float, float, int, str | None]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30.0) as client:
            while not self.stop.is_set():
                started = time.monotonic()
                response = client.post(f"{self.url}/predict", json={"text": TEXTS[0]})
                code = response.json().get("code") if response.status_code != 200 else None
                elapsed = time.monotonic() - started
                self.results.append((started, elapsed, response.status_code, code))
                time.sleep(0.02)


def test_the_same_service_process_recovers_after_the_model_server_restarts(
    model_server: ModelServerProcess, service_process: Callable, ready_waiter: Callable
) -> None:
    with service_process(model_server.grpc_target, "--deadline-ms", "20000") as service:
        ready_waiter(service.url, 60)
        prober = Prober(service.url)
        prober.start()
        try:
            time.sleep(0.5)
            killed_at = time.monotonic()
            model_server.kill()
            time.sleep(1.0)
            down = httpx.get(f"{service.url}/readyz", timeout=10)
            relaunched_at = time.monotonic()
            model_server.start_again()
            restarted_at = time.monotonic()
            recovery_s = ready_waiter(service.url, 30)
            time.sleep(0.5)
        finally:
            prober.stop.set()
            prober.join(timeout=30)
        assert service.process.poll() is None, "the service process must not have restarted"

    assert down.status_code == 503 and down.json()["ready"] is False
    results = prober.results
    # Never hangs: a call on a dead server fails at once, far below the 20 s deadline.
    assert max(elapsed for _, elapsed, _, _ in results) < 5.0
    assert {(status, code) for _, _, status, code in results} <= {
        (200, None),
        (503, "model_server_unavailable"),
    }
    # A request still in flight when the server is killed rightly fails; finished ones did not.
    assert all(status == 200 for started, took, status, _ in results if started + took < killed_at)
    while_down = [r for r in results if killed_at + 0.1 < r[0] < relaunched_at]
    assert while_down and all(status == 503 for _, _, status, _ in while_down)
    after = [status for started, _, status, _ in results if started > restarted_at + recovery_s]
    assert after and all(status == 200 for status in after)
    assert recovery_s < 10.0


async def _bounded_load(url: str, requests: int, concurrency: int) -> list[httpx.Response]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(requests):
        queue.put_nowait(i)
    responses: list[httpx.Response] = []

    async def user(client: httpx.AsyncClient) -> None:
        while not queue.empty():
            i = queue.get_nowait()
            payload = {"texts": TEXTS[: 1 + i % 4]} if i % 5 == 0 else {"text": TEXTS[i % 5]}
            responses.append(await client.post(f"{url}/predict", json=payload))

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
        await asyncio.gather(*(user(client) for _ in range(concurrency)))
    return responses


def test_timing_parts_explain_at_least_95_percent_of_the_total_under_load(
    shared_model_server: ModelServerProcess, service_process: Callable, ready_waiter: Callable
) -> None:
    with service_process(shared_model_server.grpc_target) as service:
        ready_waiter(service.url, 60)
        responses = asyncio.run(_bounded_load(service.url, requests=400, concurrency=8))
        service.stop()  # SIGTERM: the lifespan flushes the access log
        # uvicorn re-raises SIGTERM after its graceful shutdown: death by SIGTERM is a clean exit.
        assert service.process.returncode in (0, -signal.SIGTERM), service.stderr_text()

    assert [r.status_code for r in responses] == [200] * 400
    for response in responses:
        assert {"preprocess", "inference", "postprocess", "total"} <= set(
            parse_server_timing(response.headers["server-timing"])
        )
    lines = [line for line in service.access_lines() if line["path"] == "/predict"]
    assert len(lines) == 400 and all(line["status"] == 200 for line in lines)
    coverage = [
        (line["preprocess_ms"] + line["inference_ms"] + line["postprocess_ms"]) / line["total_ms"]
        for line in lines
    ]
    mean = sum(coverage) / len(coverage)
    assert 0.95 <= mean <= 1.0, f"parts explain {mean:.1%} of total_ms on average"


def test_two_workers_serve_predictions(
    shared_model_server: ModelServerProcess, service_process: Callable, ready_waiter: Callable
) -> None:
    with service_process(shared_model_server.grpc_target, "--workers", "2") as service:
        ready_waiter(service.url, 90)
        with httpx.Client(timeout=30.0) as client:
            statuses = [
                client.post(f"{service.url}/predict", json={"text": text}).status_code
                for text in TEXTS * 4
            ]
        service.stop()
    assert statuses == [200] * len(statuses)
    assert len(service.access_lines()) >= len(statuses)


@pytest.mark.parametrize(
    ("args", "http", "loop"),
    [([], "httptools", "uvloop"), (["--http", "h11", "--loop", "asyncio"], "h11", "asyncio")],
)
def test_the_start_up_line_names_the_http_parser_and_loop_in_use(
    args: list[str],
    http: str,
    loop: str,
    shared_model_server: ModelServerProcess,
    service_process: Callable,
) -> None:
    with service_process(shared_model_server.grpc_target, *args) as service:
        response = httpx.post(f"{service.url}/predict", json={"text": TEXTS[0]}, timeout=30)
        assert response.status_code == 200
    [started] = service.log_events("service_started")
    assert (started["http"], started["loop"]) == (http, loop)


@pytest.mark.parametrize(
    ("args", "exit_code", "says"),
    [
        (["--port", "eighty"], 2, "--port"),
        (["--model-base-path", "/nonexistent/model"], 1, "--model-base-path"),
    ],
)
def test_user_mistakes_end_in_one_line(
    args: list[str], exit_code: int, says: str, demo_model_dir: Any
) -> None:
    base = ["--model-base-path", str(demo_model_dir)]
    result = subprocess.run(
        [sys.executable, "-m", "service", *base, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == exit_code
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_ends_in_one_line(demo_model_dir: Any) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        args = ["--port", str(port), "--model-base-path", str(demo_model_dir)]
        result = subprocess.run(
            [sys.executable, "-m", "service", *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(port) in lines[0] and "--port" in lines[0], result.stderr

"""The embedded backend for real: the demo model served by `python -m model_server`."""

from __future__ import annotations

import json
import socket
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import pytest

from model_server.batching_parameters import BatchingParameters, load_file
from tuner.process import free_port
from tuner.servers import (
    EmbeddedBackend,
    ModelServerError,
    PortConflictError,
    ServerExitedBeforeReady,
    ServerNeverReady,
    ServerSpec,
    create_backend,
)
from tuner.servers.metrics import mean_batch_size, request_count_delta, scrape
from tuner.servers.ports import port_in_use

BATCHING = BatchingParameters(
    max_batch_size=8, batch_timeout_micros=20_000, num_batch_threads=1, max_enqueued_batches=64
)


def spec_for(model_dir: Path, **overrides) -> ServerSpec:
    settings = {"ready_timeout_s": 90.0, "stop_timeout_s": 20.0, **overrides}
    return ServerSpec("sentiment", model_dir, free_port(), free_port(), **settings)


def predict(rest_url: str) -> None:
    body = json.dumps({"instances": [[5, 6, 7] + [0] * 47]}).encode()
    request = urllib.request.Request(
        f"{rest_url}/v1/models/sentiment:predict", data=body, method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert "predictions" in json.load(response)


def test_start_scrape_restart_stop(demo_model_dir: Path, tmp_path: Path) -> None:
    spec = spec_for(demo_model_dir)
    backend, why = create_backend("embedded", spec)
    assert isinstance(backend, EmbeddedBackend) and "embedded" in why
    try:
        backend.start(BATCHING, {"tensorflow_intra_op_parallelism": "1"}, tmp_path / "t0")
        assert backend.is_running()
        first_pid = backend.pids[0]
        assert load_file(tmp_path / "t0" / "batching_parameters.txt") == BATCHING
        assert backend.log_path == tmp_path / "t0" / "server.log"
        assert "--enable_batching" in backend.log_tail()
        assert backend.grpc_target == f"127.0.0.1:{spec.grpc_port}"

        before = scrape(backend.metrics_url, model_name="sentiment")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda _: predict(backend.rest_url), range(32)))
        after = scrape(backend.metrics_url, model_name="sentiment")
        assert request_count_delta(before, after, "OK") == 32
        mean = mean_batch_size(before, after)
        assert mean is not None and 1.0 <= mean <= 8.0

        backend.restart(None, {}, tmp_path / "t1")
        assert backend.is_running() and backend.pids[0] != first_pid
        assert not psutil.pid_exists(first_pid)
        assert not (tmp_path / "t1" / "batching_parameters.txt").exists()
        assert "--enable_batching" not in backend.log_tail()
        predict(backend.rest_url)
    finally:
        backend.stop()
    assert not backend.is_running() and backend.pids == []
    assert not port_in_use("127.0.0.1", spec.grpc_port)
    assert not port_in_use("127.0.0.1", spec.rest_port)
    backend.stop()  # idempotent


def test_model_without_versions_fails_with_reason_and_log(tmp_path: Path) -> None:
    empty = tmp_path / "empty_model"
    empty.mkdir()
    backend = EmbeddedBackend(spec_for(empty, ready_timeout_s=15.0, stop_timeout_s=10.0))
    with pytest.raises(ModelServerError) as caught:
        backend.start(None, {}, tmp_path / "trial")
    err = caught.value
    assert isinstance(err, ServerExitedBeforeReady | ServerNeverReady)
    assert err.reason in ("server_exited", "never_ready")
    assert "model 'sentiment'" in str(err) and str(tmp_path / "trial" / "server.log") in str(err)
    assert err.log_tail.strip()
    assert not backend.is_running()
    assert not port_in_use("127.0.0.1", backend.spec.grpc_port)


def test_port_conflict_is_found_before_launch(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        spec = ServerSpec("sentiment", tmp_path, grpc_port=free_port(), rest_port=port)
        backend = EmbeddedBackend(spec)
        with pytest.raises(PortConflictError) as caught:
            backend.start(None, {}, tmp_path / "trial")
    assert caught.value.port == port and "server.rest_port" in str(caught.value)
    assert not (tmp_path / "trial" / "server.log").exists()
    assert not backend.is_running()

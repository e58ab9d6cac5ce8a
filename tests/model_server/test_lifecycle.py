"""A server's life seen from outside: loading, AVAILABLE, TF Serving's default batching, and a
clean stop on SIGTERM / SIGINT that lets in-flight requests finish and releases both ports."""

from __future__ import annotations

import signal
import socket
import time
from dataclasses import dataclass

import grpc
import numpy as np
import pytest

from model_server.batching_parameters import BatchingParameters
from model_server.protos import get_model_status_pb2, model_service_pb2_grpc
from tests.model_server.test_batching_integration import (
    PROCESSED,
    Client,
    Metrics,
    predict_request,
    probabilities,
    run_concurrently,
)
from tests.model_server.test_startup_errors import port_is_free
from tests.support.model_server import ModelServerProcess, running_model_server

AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE
STATE_NAMES = get_model_status_pb2.ModelVersionStatus.State
# Reconnect quickly: gRPC's default backoff after a refused connection is about a second.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 100),
]


@dataclass(frozen=True)
class Observation:
    state: str  # as GetModelStatus reported it
    predict: str  # the status code name of a Predict sent right after


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def observe_start(server: ModelServerProcess, timeout: float = 90.0) -> list[Observation]:
    """Poll GetModelStatus from the moment the gRPC port listens until AVAILABLE."""
    assert server.process is not None
    deadline = time.monotonic() + timeout
    while not _listening(server.grpc_port):
        assert server.process.poll() is None, server.log_text()
        assert time.monotonic() < deadline, "the gRPC port never opened"
        time.sleep(0.01)
    observations: list[Observation] = []
    client = Client(server.grpc_target, options=FAST_RECONNECT)
    try:
        models = model_service_pb2_grpc.ModelServiceStub(client.channel)
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = server.model_name
        while time.monotonic() < deadline:
            status = models.GetModelStatus(request, timeout=10, wait_for_ready=True)
            state = STATE_NAMES.Name(status.model_version_status[0].state)
            outcome = client.try_predict(np.zeros((1, 50), np.int32))
            code = outcome.code().name if isinstance(outcome, grpc.RpcError) else "OK"
            observations.append(Observation(state, code))
            if state == "AVAILABLE":
                return observations
            time.sleep(0.02)
    finally:
        client.close()
    raise AssertionError(f"not AVAILABLE after {timeout} s: {observations[-3:]}")


@pytest.fixture(scope="module")
def default_batching(demo_model_dir):
    """`--enable_batching` without a file, watched from its first answer to AVAILABLE."""
    with running_model_server(demo_model_dir, enable_batching=True, wait=False) as server:
        observations = observe_start(server)
        client = Client(server.grpc_target)
        try:
            yield server, client, observations
        finally:
            client.close()


def test_nothing_listens_until_the_model_is_loaded(default_batching) -> None:
    # server.cc: ServerCore::Create loads the model before the gRPC server is built, so the
    # first answer a client ever gets already says AVAILABLE.
    server, _, observations = default_batching
    assert observations[0] == Observation("AVAILABLE", "OK")
    log = server.log_text()
    assert log.index("event=loading") < log.index("event=listening") < log.index("event=available")
    # Only the server's own key=value lines: TensorFlow's native start-up chatter is filtered.
    assert all(line.startswith("ts=") for line in log.splitlines()), log


def test_enable_batching_without_a_file_uses_tf_servings_defaults(default_batching) -> None:
    server, client, _ = default_batching
    assert "batching=on" in server.log_text()
    # max_batch_size defaults to 1000.
    assert client.predict(np.zeros((1000, 50), np.int32)).shape == (1000, 3)
    with pytest.raises(grpc.RpcError) as caught:
        client.predict(np.zeros((1001, 50), np.int32))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum input batch size 1000" in caught.value.details()
    # With no timeout, requests that arrive while the batch threads are busy share a batch.
    before = Metrics.scrape(server.rest_url)
    run_concurrently(lambda i: client.predict(np.full((1, 50), i % 100, np.int32)), range(200))
    processed = Metrics.scrape(server.rest_url).histogram(PROCESSED) - before.histogram(PROCESSED)
    assert processed.sum == 200
    assert processed.count < 200, "no batch held several requests"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_lets_in_flight_requests_finish_and_releases_ports(demo_model_dir, sig) -> None:
    # A lone request waits 2 s for company, so it is surely still in flight at the signal.
    batching = BatchingParameters(max_batch_size=8, batch_timeout_micros=2_000_000)
    with running_model_server(demo_model_dir, batching=batching) as server:
        client = Client(server.grpc_target)
        try:
            rows = np.zeros((2, 50), np.int32)
            futures = [
                client.stub.Predict.future(predict_request(rows[:1]), timeout=30) for _ in range(3)
            ]
            time.sleep(0.3)
            assert not any(f.done() for f in futures)
            server.process.send_signal(sig)
            outputs = [probabilities(f.result()) for f in futures]
        finally:
            client.close()
        assert server.process.wait(timeout=30) == 0
        assert all(out.shape == (1, 3) for out in outputs)
        assert port_is_free(server.grpc_port) and port_is_free(server.rest_port)
        log = server.log_text()
        assert "event=stopping" in log and "event=stopped exit_code=0" in log
        assert "Traceback" not in log

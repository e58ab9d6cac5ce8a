"""The readiness poll's hand-declared messages speak TF Serving's wire format."""

from __future__ import annotations

import subprocess
import sys

import pytest
from tensorflow_serving.apis import get_model_status_pb2

from tuner.process import free_port
from tuner.servers.readiness import (
    LOADING_NOT_LISTENING,
    GetModelStatusRequest,
    GetModelStatusResponse,
    NeverReadyError,
    ServerExitedError,
    wait_until_available,
)


def test_request_bytes_parse_as_tf_servings_request() -> None:
    ours = GetModelStatusRequest()
    ours.model_spec.name = "sentiment"
    theirs = get_model_status_pb2.GetModelStatusRequest.FromString(ours.SerializeToString())
    assert theirs.model_spec.name == "sentiment"


def test_tf_servings_response_parses_as_ours() -> None:
    theirs = get_model_status_pb2.GetModelStatusResponse()
    status = theirs.model_version_status.add()
    status.version = 3
    status.state = get_model_status_pb2.ModelVersionStatus.AVAILABLE
    status.status.error_message = "ignored by the poll"
    ours = GetModelStatusResponse.FromString(theirs.SerializeToString())
    assert [(s.version, s.state) for s in ours.model_version_status] == [(3, 30)]


def test_a_process_that_exits_fails_fast() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    proc.wait()
    with pytest.raises(ServerExitedError) as info:
        wait_until_available("127.0.0.1:9", "m", timeout=30, process=proc)
    assert info.value.exit_code == 3


def test_model_server_becomes_available(shared_model_server) -> None:
    wait_until_available(shared_model_server.grpc_target, "sentiment", timeout=10)


def test_a_live_server_that_does_not_answer_yet_is_reported_as_loading() -> None:
    # TF Serving opens its ports only after the model loaded (server.cc), so silence from a
    # running process means "loading", never "server down".
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(NeverReadyError) as info:
            wait_until_available(f"127.0.0.1:{free_port()}", "m", timeout=0.3, process=proc)
    finally:
        proc.kill()
        proc.wait()
    assert info.value.last_state == LOADING_NOT_LISTENING
    assert "still loading the model" in str(info.value)
    assert "down" not in str(info.value)

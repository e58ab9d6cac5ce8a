"""gRPC failures are named as the HTTP user's are, so the capacity search and the records
read a gRPC target's failures exactly as the service's."""

from __future__ import annotations

import grpc
import pytest

from tuner.load.classify import CONNECTION, TIMEOUT, classify_failure
from tuner.load.grpc_predict import failure_for


class FakeRpcError(grpc.RpcError):
    """Stands in for the error grpc raises (its real class is private)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


@pytest.mark.parametrize(
    ("code", "details", "expected"),
    [
        (grpc.StatusCode.UNAVAILABLE, "The batch scheduling queue to which this task was "
         "submitted is full", "model_server_overloaded"),
        (grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", CONNECTION),
        (grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded", TIMEOUT),
        (grpc.StatusCode.INVALID_ARGUMENT, "input 'x' must be DT_FLOAT", "grpc_invalid_argument"),
        (grpc.StatusCode.NOT_FOUND, "Servable not found", "grpc_not_found"),
    ],
)  # fmt: skip
def test_failures_are_classified_as_the_http_users_are(code, details, expected):
    response, exception = failure_for(FakeRpcError(code, details))
    body = response.content if response.status_code else None
    assert classify_failure(response.status_code, body, exception) == expected

"""Sending TF Serving PredictRequests over gRPC from Locust, reported as the HTTP users' are.

The requests arrive already serialized (tuner/measure/request_source.py builds them from the REST
bodies), so the Locust process sends bytes through a generic unary call and never imports
TensorFlow. Each call fires Locust's `request` event with its time and, on failure, a
response stand-in whose status and `code` are those the service would have answered for
the same gRPC status, so the interval reporter names failures as it does for HTTP: a full
batch queue is `model_server_overloaded`, a server that cannot be reached is `connection`
(a fault of the bench), a deadline is `timeout`.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from pathlib import Path

import grpc

PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
# TF Serving's REST statuses for gRPC codes (http_rest_api_util), as model_server/errors.py.
_HTTP_STATUS = {
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.UNAVAILABLE: 503,
}


def read_requests(path: str | Path) -> list[bytes]:
    return [base64.b64decode(line) for line in Path(path).read_bytes().splitlines() if line]


@dataclass(frozen=True)
class GrpcFailure:
    """What the interval reporter reads of a failed call: an HTTP-like status and body."""

    status_code: int | None
    content: bytes
    text: str


class GrpcFailureError(Exception):
    """A failed Predict call; `str()` is the gRPC status and details."""


def failure_for(exc: grpc.RpcError) -> tuple[GrpcFailure, GrpcFailureError]:
    code = exc.code()
    details = (exc.details() or "").strip()
    lowered = details.lower()
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        error = GrpcFailureError(f"timed out: {details}")
        return GrpcFailure(None, b"", ""), error
    if code == grpc.StatusCode.UNAVAILABLE and not ("queue" in lowered and "full" in lowered):
        # Nothing answered (refused, reset): the HTTP user's "connection" failure.
        return GrpcFailure(None, b"", ""), GrpcFailureError(f"{code.name}: {details}")
    name = (
        "model_server_overloaded"
        if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
        else f"grpc_{code.name.lower()}"
    )
    body = json.dumps({"code": name, "error": details[:300]})
    failure = GrpcFailure(_HTTP_STATUS.get(code, 500), body.encode(), body)
    return failure, GrpcFailureError(f"{code.name}: {details}")


class PredictSender:
    """One channel and a round of requests; `send` makes one call and reports it."""

    def __init__(self, target: str, timeout_s: float) -> None:
        self.channel = grpc.insecure_channel(target)
        self.call = self.channel.unary_unary(
            PREDICT_METHOD, request_serializer=None, response_deserializer=None
        )
        self.timeout_s = timeout_s

    def send(self, environment, request: bytes) -> None:
        started = time.perf_counter()
        response_length, response, exception = 0, None, None
        try:
            response_length = len(self.call(request, timeout=self.timeout_s))
        except grpc.RpcError as exc:
            response, exception = failure_for(exc)
        environment.events.request.fire(
            request_type="grpc",
            name=PREDICT_METHOD,
            response_time=(time.perf_counter() - started) * 1000.0,
            response_length=response_length,
            response=response,
            exception=exception,
            context={},
        )

    def close(self) -> None:
        self.channel.close()

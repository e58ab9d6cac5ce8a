"""The warm-up after every restart: the study's own requests through the whole path.

It sends what the load will send (the configured REST bodies to the generic endpoint, or the
demo's texts to /predict), so the first measured second does not pay for connection set-up
and TensorFlow's first-call tracing. Every answer must be a 200: a configuration (or a request
file) the server rejects fails the trial `warmup_failed` with the response's own message,
instead of being measured as a rate of errors; a service that cannot be reached at all is
`service_failed`, a fault of the bench.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from tuner.errors import TrialFailed
from tuner.load.spec import LoadProfile

WARMUP_FAILED = "warmup_failed"
_HEADERS = {"Content-Type": "application/json"}


def warmup_requests(
    profile: LoadProfile, texts: Sequence[str], count: int
) -> Iterator[tuple[str, bytes]]:
    """(path, JSON body) of the `count` warm-up requests, in the load's own order."""
    import orjson

    if profile.requests_file is not None:
        lines = profile.requests_file.read_bytes().splitlines()
        bodies = [line for line in lines if line.strip()]
        for i in range(count):
            yield profile.predict_path, bodies[i % len(bodies)]
        return
    for i in range(count):
        yield "/predict", orjson.dumps({"text": texts[i % len(texts)]})


def warm_up(url: str, requests: Iterator[tuple[str, bytes]], timeout_s: float = 10.0) -> int:
    """Send every request, checking each status; returns how many were sent."""
    sent = 0
    with httpx.Client(base_url=url, timeout=timeout_s) as client:
        for path, body in requests:
            try:
                response = client.post(path, content=body, headers=_HEADERS)
            except httpx.HTTPError as exc:
                raise TrialFailed(
                    "service_failed", f"a warm-up request to the service failed: {exc}"
                ) from None
            sent += 1
            if response.status_code != 200:
                raise TrialFailed(
                    WARMUP_FAILED,
                    f"warm-up request {sent} to {path} answered {response.status_code}: "
                    f"{_message(response)}",
                    status=response.status_code,
                )
    return sent


def warm_up_target(profile: LoadProfile, url: str, texts: Sequence[str], count: int) -> int:
    """The warm-up over the load's own target: HTTP to the service or the REST API, or the
    same requests over gRPC."""
    if profile.target == "grpc" and profile.grpc_requests_file is not None:
        return warm_up_grpc(url.split("://", 1)[-1], profile.grpc_requests_file, count)
    return warm_up(url, warmup_requests(profile, texts, count))


def warm_up_grpc(target: str, path: Path, count: int, timeout_s: float = 10.0) -> int:
    import grpc

    from tuner.load.grpc_predict import PREDICT_METHOD, read_requests

    requests = read_requests(path)
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(PREDICT_METHOD)
        for sent in range(1, count + 1):
            try:
                call(requests[(sent - 1) % len(requests)], timeout=timeout_s)
            except grpc.RpcError as exc:
                code = exc.code()
                if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise TrialFailed(
                        "service_failed",
                        f"a warm-up request to the model server at {target} failed: "
                        f"{code.name}: {exc.details()}",
                    ) from None
                raise TrialFailed(
                    WARMUP_FAILED,
                    f"warm-up request {sent} over gRPC answered {code.name}: {exc.details()}",
                    status=code.name,
                ) from None
    return count


def _message(response: httpx.Response) -> str:
    """The error's own sentence ({"error": ...} from the service or TF Serving), else the
    start of the body."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300] or "(empty body)"
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return response.text[:300]

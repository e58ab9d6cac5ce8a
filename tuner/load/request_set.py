"""The request bodies a Locust process sends, whichever host it runs on.

On the tuner's host the bodies are files the tuner writes once per study
(tuner/measure/request_source.py): TF Serving REST bodies, one per line, and for `load.target =
"grpc"` the same requests as serialized PredictRequests, base64 per line; the environment
names them (TUNER_LOAD_REQUESTS_FILE, TUNER_LOAD_GRPC_REQUESTS_FILE). A load-worker on
another host has no such files: its Locust worker asks the master, which answers with the
files' bytes as a Locust message (distributed.py), so a load host needs no copy of the
requests, of the model's warm-up file, or of the model to generate them from.

Both ends parse the same bytes with the same code and hash them for the fingerprint the
tuner checks, so a worker sends exactly the bodies the tuner configured, or is refused.

Pure: no Locust, no TensorFlow; imported by the tuner and by the Locust processes.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class RequestSet:
    rest_data: bytes  # JSON lines of REST bodies, as the tuner wrote them
    order: str  # "cycle" or "random"
    path: str  # where the REST bodies go, e.g. /v1/models/NAME:predict
    grpc_data: bytes | None = None  # base64 lines of serialized PredictRequests

    @cached_property
    def bodies(self) -> list[bytes]:
        return [line for line in self.rest_data.splitlines() if line.strip()]

    @cached_property
    def grpc_requests(self) -> list[bytes]:
        lines = (self.grpc_data or b"").splitlines()
        return [base64.b64decode(line) for line in lines if line]

    def to_message(self) -> dict[str, Any]:
        """The Locust message (msgpack: bytes travel as they are) a worker rebuilds it from."""
        return {
            "rest": self.rest_data,
            "grpc": self.grpc_data,
            "order": self.order,
            "path": self.path,
        }

    @classmethod
    def from_message(cls, data: Mapping[str, Any]) -> RequestSet | None:
        if data.get("rest") is None:
            return None  # the master sends no bodies: the locustfile's own requests
        return cls(bytes(data["rest"]), str(data["order"]), str(data["path"]), data.get("grpc"))

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> RequestSet | None:
        rest = env.get("TUNER_LOAD_REQUESTS_FILE")
        if not rest:
            return None
        grpc = env.get("TUNER_LOAD_GRPC_REQUESTS_FILE")
        return cls(
            Path(rest).read_bytes(),
            env.get("TUNER_LOAD_REQUESTS_ORDER", "cycle"),
            env.get("TUNER_LOAD_PREDICT_PATH", "/predict"),
            Path(grpc).read_bytes() if grpc else None,
        )


def fingerprint(rest_data: bytes | None, order: str, path: str, target: str) -> str:
    """The requests' part of a Locust process's fingerprint (locust_process.fingerprint)."""
    digest = hashlib.sha256(rest_data).hexdigest()[:12] if rest_data is not None else "missing"
    return f" requests={digest} order={order} path={path} target={target}"


_current: list[RequestSet | None] = []  # empty until read from the environment or received


def current() -> RequestSet | None:
    """This process's requests; None when the locustfile sends its own (the demo's texts)."""
    if not _current:
        _current.append(RequestSet.from_env())
    return _current[0]


def install(requests: RequestSet | None) -> None:
    """Replace this process's requests with those the master sent."""
    _current[:] = [requests]

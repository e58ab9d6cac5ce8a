"""Where a study's requests come from: TF Serving REST bodies for any model.

One of: a JSON-lines file of REST bodies (`load.requests = "FILE"`), the SavedModel's own
`assets.extra/tf_serving_warmup_requests` (`load.requests = "model-warmup"`), or bodies
generated from the signature (`load.generate_rows = N`). Whichever it is, it is written once
per study as `requests.jsonl` in the workdir, the one file the locustfile and the warm-up
read, so both send exactly the same bodies. Without any of them the demo's texts go to
/predict, as before.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tuner.errors import ConfigError
from tuner.load.spec import LoadProfile
from tuner.measure.model_signature import generated_bodies, read_signature, version_dir

MODEL_WARMUP = "model-warmup"


def predict_path(model_name: str) -> str:
    return f"/v1/models/{model_name}:predict"


def request_bodies(
    requests: str | None, generate_rows: int, model_base_path: Path, resolve: Any = Path
) -> list[bytes] | None:
    """The configured source's bodies, or None for the demo's texts. Raises ConfigError (one
    sentence) when the source cannot give a single valid body: checked before any trial."""
    if requests and generate_rows:
        raise ConfigError("load.requests and load.generate_rows are both set; keep the one to send")
    if generate_rows < 0:
        raise ConfigError(f"load.generate_rows must be >= 0, not {generate_rows}")
    if requests == MODEL_WARMUP:
        return warmup_bodies(version_dir(model_base_path))
    if requests:
        return jsonl_bodies(resolve(requests))
    if generate_rows:
        return generated_bodies(version_dir(model_base_path), generate_rows)
    return None


def with_requests(
    profile: LoadProfile,
    bodies: list[bytes] | None,
    workdir: Path,
    model_name: str,
    grpc_bodies: list[bytes] | None = None,
) -> LoadProfile:
    """The profile sending `bodies` (written to workdir/requests.jsonl) to the generic
    endpoint, and over gRPC `grpc_bodies` (serialized PredictRequests, base64 per line);
    unchanged when there are none."""
    if bodies is None:
        return profile
    workdir.mkdir(parents=True, exist_ok=True)
    out = workdir / "requests.jsonl"
    out.write_bytes(b"".join(body + b"\n" for body in bodies))
    grpc_out = None
    if grpc_bodies is not None:
        grpc_out = workdir / "requests.grpc.b64"
        grpc_out.write_bytes(b"".join(base64.b64encode(b) + b"\n" for b in grpc_bodies))
    return replace(
        profile,
        requests_file=out,
        predict_path=predict_path(model_name),
        grpc_requests_file=grpc_out,
    )


def for_target(
    target: str, bodies: list[bytes] | None, model_base_path: Path, model_name: str
) -> list[bytes] | None:
    """The bodies as serialized PredictRequests when the load goes over gRPC (None else);
    ConfigError when a target other than the service has no requests to send."""
    if target == "service":
        return None
    if bodies is None:
        raise ConfigError(
            f'load.target = "{target}" sends TF Serving requests straight to the model '
            'server: set load.requests (a file, or "model-warmup") or load.generate_rows'
        )
    if target != "grpc":
        return None
    return [
        predict_request(body, number, model_base_path, model_name).SerializeToString()
        for number, body in enumerate(bodies, 1)
    ]


def predict_request(body: bytes, number: int, model_base_path: Path, model_name: str):
    """One REST body as the PredictRequest the service would build from it."""
    from model_server.errors import ServingError
    from model_server.protos import predict_pb2
    from model_server.rest_json import predict_body
    from model_server.tensors import to_proto

    parsed = predict_body(orjson.loads(body))
    key = parsed.signature_name or "serving_default"
    spec = read_signature(version_dir(model_base_path), key)
    try:
        inputs = spec.check(parsed.inputs(spec))
    except ServingError as exc:
        raise ConfigError(
            f"load.requests: request {number} does not fit the model: {exc.message}"
        ) from None
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model_name
    request.model_spec.signature_name = key
    for name, value in inputs.items():
        request.inputs[name].CopyFrom(to_proto(value))
    return request


def jsonl_bodies(path: Path) -> list[bytes]:
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise ConfigError(
            f"load.requests: cannot read {path} ({exc.strerror}); give a JSON-lines file "
            "of TF Serving REST bodies"
        ) from None
    bodies = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            body = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise ConfigError(
                f"load.requests: line {number} of {path} is not JSON; each line must be one "
                'REST body such as {"instances": [...]}'
            ) from None
        if not isinstance(body, dict) or ("instances" in body) == ("inputs" in body):
            raise ConfigError(
                f"load.requests: line {number} of {path} must be an object with "
                '"instances" or "inputs" (TF Serving\'s REST predict body)'
            )
        bodies.append(orjson.dumps(body))
    if not bodies:
        raise ConfigError(f"load.requests: {path} holds no request; add one body per line")
    return bodies


def warmup_bodies(version_dir: Path) -> list[bytes]:
    """The model's warm-up PredictRequests as columnar REST bodies (bytes as b64)."""
    from model_server.errors import ServingError
    from model_server.tensors import to_numpy
    from model_server.warmup import WarmupError, parse_record, read_records, warmup_path

    path = warmup_path(version_dir)
    if not path.is_file():
        raise ConfigError(
            f'load.requests = "{MODEL_WARMUP}" but {path} does not exist; give a requests '
            "file or load.generate_rows instead"
        )
    bodies = []
    try:
        for record in read_records(path):
            entry = parse_record(record, path)
            if entry.WhichOneof("log_type") != "predict_log":
                continue
            request = entry.predict_log.request
            inputs = {k: _jsonable(to_numpy(t, k)) for k, t in request.inputs.items()}
            body: dict[str, Any] = {"inputs": inputs}
            if request.model_spec.signature_name:
                body["signature_name"] = request.model_spec.signature_name
            bodies.append(orjson.dumps(body))
    except (WarmupError, ServingError) as exc:
        raise ConfigError(f"load.requests: cannot read {path}: {exc}") from None
    if not bodies:
        raise ConfigError(f"load.requests: {path} holds no predict request")
    return bodies


def _jsonable(array: np.ndarray) -> Any:
    if array.dtype.kind != "O":
        return array.tolist()

    def convert(item: Any) -> Any:
        if isinstance(item, list):
            return [convert(i) for i in item]
        return {"b64": base64.b64encode(item).decode()}

    return convert(array.tolist())

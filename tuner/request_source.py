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
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from tuner.errors import ConfigError
from tuner.load.spec import LoadProfile

MODEL_WARMUP = "model-warmup"
ORDERS = ("cycle", "random")
GENERATED_BODIES = 64


def predict_path(model_name: str) -> str:
    return f"/v1/models/{model_name}:predict"


def read_bodies(path: Path) -> list[bytes]:
    """The materialized request file: one JSON body per line."""
    return [line for line in path.read_bytes().splitlines() if line.strip()]


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
        return warmup_bodies(_version_dir(model_base_path))
    if requests:
        return jsonl_bodies(resolve(requests))
    if generate_rows:
        return generated_bodies(_version_dir(model_base_path), generate_rows)
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
    from tensorflow_serving.apis import predict_pb2

    from model_server.errors import ServingError
    from model_server.rest_json import predict_body
    from model_server.tensors import to_proto

    parsed = predict_body(orjson.loads(body))
    key = parsed.signature_name or "serving_default"
    spec = read_signature(_version_dir(model_base_path), key)
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


def generated_bodies(version_dir: Path, rows: int, seed: int = 0) -> list[bytes]:
    """Bodies of `rows` rows each, values of each input's dtype and shape."""
    from model_server.model import DEFAULT_SIGNATURE

    spec = read_signature(version_dir, DEFAULT_SIGNATURE)
    if not spec.batched:
        raise ConfigError(
            f"load.generate_rows: the model's inputs have no batch dimension "
            f"({ {k: list(s.shape or []) for k, s in spec.inputs.items()} }); give requests "
            "in a file (load.requests) instead"
        )
    rng = random.Random(seed)
    nprng = np.random.default_rng(seed)
    bodies = []
    for _ in range(GENERATED_BODIES):
        inputs = {}
        for name, tensor in spec.inputs.items():
            dims = tensor.shape[1:] if tensor.shape else ()
            if any(d < 0 for d in dims):
                raise ConfigError(
                    f"load.generate_rows: input {name!r} has shape {list(tensor.shape)} with a "
                    "free dimension besides the batch; give requests in a file (load.requests)"
                )
            shape = (rows, *dims)
            inputs[name] = _values(tensor.dtype, shape, rng, nprng)
        bodies.append(orjson.dumps({"inputs": inputs}))
    return bodies


def _values(dtype: np.dtype, shape: tuple[int, ...], rng: random.Random, nprng) -> Any:
    count = int(np.prod(shape))
    if dtype.kind == "O":
        texts = [rng.choice(_corpus()) for _ in range(count)]
        return np.array(texts, dtype=object).reshape(shape).tolist()
    if dtype.kind == "f":
        return nprng.random(shape).astype(np.float32).round(4).tolist()
    if dtype.kind == "b":
        return nprng.integers(0, 2, shape).astype(bool).tolist()
    return nprng.integers(0, 10, shape).tolist()


def check_batchable(model_base_path: Path) -> None:
    """ConfigError when the model's serving_default inputs have no batch dimension: TF
    Serving can only serve it unbatched, so there is no batching to tune. A model without
    that signature, or one this cannot read, is left to the model server to judge."""
    from model_server.model import DEFAULT_SIGNATURE

    try:
        spec = read_signature(_version_dir(model_base_path), DEFAULT_SIGNATURE)
    except ConfigError:
        return
    if not spec.batched:
        shapes = {k: list(s.shape) if s.shape else s.shape for k, s in spec.inputs.items()}
        raise ConfigError(
            f"batching cannot apply to {model_base_path}: its inputs {shapes} have no free "
            "leading batch dimension, so TF Serving serves it unbatched and there is nothing "
            "to tune"
        )


def _corpus() -> list[str]:
    """The demo's deterministic review corpus: realistic strings of varied length."""
    from scripts.corpus import generate

    return [text for text, _ in generate(256, seed=7)]


def read_signature(version_dir: Path, key: str):
    """A signature's spec from saved_model.pb alone (no TensorFlow graph loaded)."""
    from tensorflow.core.protobuf import saved_model_pb2

    from model_server.signature_spec import signature_spec

    proto = saved_model_pb2.SavedModel()
    try:
        proto.ParseFromString((version_dir / "saved_model.pb").read_bytes())
    except Exception as exc:
        raise ConfigError(f"cannot read the SavedModel at {version_dir}: {exc}") from None
    for meta_graph in proto.meta_graphs:
        if "serve" in meta_graph.meta_info_def.tags and key in meta_graph.signature_def:
            return signature_spec(key, meta_graph.signature_def[key])
    raise ConfigError(
        f"the SavedModel at {version_dir} has no {key!r} signature tagged 'serve'; "
        "TF Serving calls that one by default"
    )


def _version_dir(model_base_path: Path) -> Path:
    from model_server.preflight import servable_versions

    versions = servable_versions(model_base_path)
    if not versions:
        raise ConfigError(
            f"no servable version under {model_base_path}: expected a numeric subdirectory "
            "(e.g. 1/) holding saved_model.pb"
        )
    return model_base_path / str(versions[0])

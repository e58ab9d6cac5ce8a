"""What a SavedModel's saved_model.pb says, read without loading its graph: a signature's
inputs, whether batching can apply, and request bodies generated to fit the signature.
"""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson

from tuner.errors import ConfigError

if TYPE_CHECKING:  # the base install (no TensorFlow) imports this module too
    from model_server.signature_spec import SignatureSpec

GENERATED_BODIES = 64


def generated_bodies(version_dir: Path, rows: int, seed: int = 0) -> list[bytes]:
    """Bodies of `rows` rows each, values of each input's dtype and shape."""
    from model_server.signature_spec import DEFAULT_SIGNATURE

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
    that signature, or one this cannot read (the base install has no TensorFlow to read it
    with), is left to the model server to judge."""
    if importlib.util.find_spec("tensorflow") is None:
        return
    from model_server.signature_spec import DEFAULT_SIGNATURE

    try:
        spec = read_signature(version_dir(model_base_path), DEFAULT_SIGNATURE)
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
    from service.corpus import generate

    return [text for text, _ in generate(256, seed=7)]


def read_signature(version_dir: Path, key: str) -> SignatureSpec:
    """A signature's spec from saved_model.pb alone (no TensorFlow graph loaded)."""
    from model_server.protos import saved_model_pb2
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


def version_dir(model_base_path: Path) -> Path:
    """The highest numeric version directory; ConfigError when there is none."""
    from model_server.preflight import servable_versions

    versions = servable_versions(model_base_path)
    if not versions:
        raise ConfigError(
            f"no servable version under {model_base_path}: expected a numeric subdirectory "
            "(e.g. 1/) holding saved_model.pb"
        )
    return model_base_path / str(versions[0])

"""Finding, loading and running a SavedModel version, as TF Serving's SavedModelBundle does.

Signature metadata comes from the SavedModel's own MetaGraphDef (so GetModelMetadata returns
the exact SignatureDefs TF Serving would), and inputs are checked against it before they are
queued: a wrong name, dtype or shape must fail alone with INVALID_ARGUMENT, not poison a
batch of other clients' requests.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path

import grpc
import numpy as np

from model_server.errors import ServingError
from model_server.preflight import servable_versions
from model_server.protos import meta_graph_pb2, saved_model_pb2
from model_server.signature_spec import SignatureSpec, signature_spec

log = logging.getLogger("model_server")

SERVE_TAG = "serve"


class ModelLoadError(RuntimeError):
    """The model cannot be served; the message names the path and the reason."""


@dataclass
class Signature(SignatureSpec):
    function: object = None  # a ConcreteFunction taking the inputs as keyword arguments

    def run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Blocking; called from batch threads. TensorFlow releases the GIL while it runs.

        A TensorFlow error keeps its canonical code (e.g. an out-of-range token id is
        INVALID_ARGUMENT), as TF Serving returns it, instead of becoming a server fault.
        """
        tf = _runtime()
        try:
            outputs = self.function(**{k: tf.constant(v) for k, v in inputs.items()})
        except tf.OpError as exc:
            raise ServingError(
                _GRPC_CODES.get(exc.error_code, grpc.StatusCode.UNKNOWN),
                op_error_message(exc.message),
            ) from None
        return {name: outputs[name].numpy() for name in self.outputs}


def _runtime():
    """TensorFlow, imported when a model is first loaded or run, not with this module: what
    imports the server's modules without serving a model (the test-suite's collection, in every
    worker) need not pay a TensorFlow import, seconds of CPU."""
    from model_server import tensorflow_runtime

    return tensorflow_runtime


_GRPC_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Eager wrappers around the graph's own message: TF Serving runs the graph directly and
# reports only what the op said ("indices[0,0] = 900 is not in [0, 141) [[{{node ...}}]]").
_EAGER_NOISE = re.compile(
    r"Graph execution error:|Detected at node .*? \(most recent call last\):|"
    r"<stack traces unavailable>|\[Op:__inference_\w+\]"
)


def op_error_message(message: str) -> str:
    """A TensorFlow op error as one line, without the eager runtime's wrapping."""
    return " ".join(_EAGER_NOISE.sub(" ", message).split())


@dataclass
class LoadedModel:
    name: str
    version: int
    path: Path
    signatures: dict[str, Signature]
    signature_defs: dict[str, meta_graph_pb2.SignatureDef]
    # The object tf.saved_model.load returned: the signatures' variables live as long as it.
    keepalive: object = None


def find_versions(base_path: Path) -> list[int]:
    """Numeric version subdirectories holding a SavedModel, highest first."""
    if not base_path.is_dir():
        raise ModelLoadError(f"model base path {base_path} does not exist or is not a directory")
    return servable_versions(base_path)


def load_model(name: str, base_path: Path) -> LoadedModel:
    versions = find_versions(base_path)
    if not versions:
        raise ModelLoadError(
            f"no servable version under {base_path}: expected numeric subdirectories "
            "(e.g. 1/) holding saved_model.pb"
        )
    version = versions[0]
    path = base_path / str(version)
    try:
        proto = saved_model_pb2.SavedModel()
        proto.ParseFromString((path / "saved_model.pb").read_bytes())
        meta_graphs = [m for m in proto.meta_graphs if SERVE_TAG in m.meta_info_def.tags]
        if not meta_graphs:
            raise ModelLoadError(f"{path} has no MetaGraph tagged {SERVE_TAG!r}")
        signature_defs = {
            key: sig
            for key, sig in meta_graphs[0].signature_def.items()
            if not key.startswith("__")  # e.g. __saved_model_init_op
        }
        loaded = _runtime().load_saved_model(str(path), tags=[SERVE_TAG])
    except ModelLoadError:
        raise
    except Exception as exc:  # TensorFlow raises many types for a broken SavedModel
        raise ModelLoadError(f"cannot load the SavedModel at {path}: {exc}") from exc
    signatures = {}
    for key, sig in signature_defs.items():
        if key not in loaded.signatures:
            continue
        spec = signature_spec(key, sig)
        signatures[key] = Signature(
            spec.name, spec.inputs, spec.outputs, function=loaded.signatures[key]
        )
    if not signatures:
        raise ModelLoadError(f"{path} has no callable signature")
    return LoadedModel(name, version, path, signatures, signature_defs, keepalive=loaded)

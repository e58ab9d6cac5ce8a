"""TF Serving's API protos, without importing TensorFlow.

The generated modules of `tensorflow_serving.apis` import `tensorflow.core.framework.*_pb2`,
protos that ship inside the TensorFlow wheel. Imported the usual way, the first of them runs
`tensorflow/__init__.py`, which loads all of TensorFlow: 2.5 s of CPU and ~0.5 GB in every
process that only speaks the API (the service at each start, the tuner reading a signature;
the model server itself imports TensorFlow when it loads a model, not before).
Loaded under a bare stand-in for the `tensorflow` package, only the proto modules run (~50 ms;
`tensorflow/core/**/__init__.py` are empty files). The stand-in is taken away at once; the
proto modules stay in sys.modules under their own names, so a later real `import tensorflow`
(the model server, a test) reuses them, descriptors and all.
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
import types
from collections.abc import Iterator


@contextlib.contextmanager
def _without_tensorflow_init() -> Iterator[None]:
    """`tensorflow` as a namespace over its directory while the block imports from it; nothing
    when TensorFlow is already imported, or not installed (the imports then fail as usual)."""
    spec = None if "tensorflow" in sys.modules else importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        yield
        return
    stand_in = types.ModuleType("tensorflow")
    stand_in.__path__ = list(spec.submodule_search_locations)
    sys.modules["tensorflow"] = stand_in
    try:
        yield
    finally:
        if sys.modules.get("tensorflow") is stand_in:
            del sys.modules["tensorflow"]


with _without_tensorflow_init():
    from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
    from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
    from tensorflow_serving.apis import (
        get_model_metadata_pb2,
        get_model_status_pb2,
        model_service_pb2_grpc,
        predict_pb2,
        prediction_log_pb2,
        prediction_service_pb2_grpc,
    )

__all__ = [
    "get_model_metadata_pb2",
    "get_model_status_pb2",
    "meta_graph_pb2",
    "model_service_pb2_grpc",
    "predict_pb2",
    "prediction_log_pb2",
    "prediction_service_pb2_grpc",
    "saved_model_pb2",
    "tensor_pb2",
    "tensor_shape_pb2",
    "types_pb2",
]

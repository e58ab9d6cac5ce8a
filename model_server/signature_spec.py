"""A signature's inputs and outputs as dtypes and shapes, read from its SignatureDef.

Shared by the model server (checking a request before it is queued) and the service
(checking a REST body before it becomes a PredictRequest), so both word a wrong name, dtype
or shape the same way: INVALID_ARGUMENT naming the input, the expected and the received.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from model_server.errors import invalid_argument
from model_server.tensors import dtype_name, numpy_dtype, numpy_dtype_name

if TYPE_CHECKING:  # the tuner reads specs without TensorFlow installed (the base install)
    from tensorflow.core.protobuf import meta_graph_pb2

# tf.saved_model.DEFAULT_SERVING_SIGNATURE_DEF_KEY, the signature a request without a name gets.
DEFAULT_SIGNATURE = "serving_default"


@dataclass(frozen=True)
class TensorSpec:
    name: str
    dtype: np.dtype
    dtype_code: int
    shape: tuple[int, ...] | None  # -1 for unknown dims; None for unknown rank


@dataclass
class SignatureSpec:
    name: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]

    def check(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The inputs, or INVALID_ARGUMENT naming the first wrong name, dtype or shape.

        Dtypes must match exactly, as in TF Serving: a silent int64 -> int32 cast could wrap.
        (REST converts JSON values to the signature's dtypes before this check.)
        """
        missing = sorted(set(self.inputs) - set(inputs))
        extra = sorted(set(inputs) - set(self.inputs))
        if missing or extra:
            raise invalid_argument(
                f"signature {self.name!r} takes inputs {sorted(self.inputs)}; "
                f"missing {missing}, unexpected {extra}"
            )
        for name, value in inputs.items():
            spec = self.inputs[name]
            if value.dtype != spec.dtype and not (spec.dtype.kind == "O" == value.dtype.kind):
                raise invalid_argument(
                    f"input {name!r} must be {dtype_name(spec.dtype_code)}, "
                    f"got {numpy_dtype_name(value.dtype)}"
                )
            if not shape_matches(spec.shape, value.shape):
                raise invalid_argument(
                    f"input {name!r} must have shape {list(spec.shape)} (-1 = any), "
                    f"got {list(value.shape)}"
                )
        return dict(inputs)

    @property
    def batched(self) -> bool:
        """Whether every input has a free leading (batch) dimension, which batching needs."""
        return all(
            s.shape is not None and s.shape and s.shape[0] == -1 for s in self.inputs.values()
        )


def shape_matches(want: tuple[int, ...] | None, got: tuple[int, ...]) -> bool:
    if want is None:
        return True
    if len(want) != len(got):
        return False
    return all(w in (-1, g) for w, g in zip(want, got, strict=True))


def tensor_spec(info: meta_graph_pb2.TensorInfo, name: str) -> TensorSpec:
    shape = (
        None
        if info.tensor_shape.unknown_rank
        else tuple(int(d.size) for d in info.tensor_shape.dim)
    )
    return TensorSpec(name, numpy_dtype(info.dtype), info.dtype, shape)


def signature_spec(key: str, signature_def: meta_graph_pb2.SignatureDef) -> SignatureSpec:
    return SignatureSpec(
        name=key,
        inputs={k: tensor_spec(v, k) for k, v in signature_def.inputs.items()},
        outputs={k: tensor_spec(v, k) for k, v in signature_def.outputs.items()},
    )

"""TensorProto <-> numpy, without TensorFlow's slow per-value helpers on the hot path.

Clients send tensors either as raw `tensor_content` bytes (the fast path: one np.frombuffer)
or, as tf.make_tensor_proto does for small tensors, in typed value fields, possibly a single
value meant to fill the whole shape. Both are accepted; responses always use raw bytes.
"""

from __future__ import annotations

import numpy as np

from model_server.errors import invalid_argument
from model_server.protos import tensor_pb2, tensor_shape_pb2, types_pb2

# DataType -> (numpy dtype, value field used when tensor_content is empty)
_DTYPES: dict[int, tuple[np.dtype, str]] = {
    types_pb2.DT_FLOAT: (np.dtype("<f4"), "float_val"),
    types_pb2.DT_DOUBLE: (np.dtype("<f8"), "double_val"),
    types_pb2.DT_HALF: (np.dtype("<f2"), "half_val"),
    types_pb2.DT_INT8: (np.dtype("i1"), "int_val"),
    types_pb2.DT_INT16: (np.dtype("<i2"), "int_val"),
    types_pb2.DT_INT32: (np.dtype("<i4"), "int_val"),
    types_pb2.DT_INT64: (np.dtype("<i8"), "int64_val"),
    types_pb2.DT_UINT8: (np.dtype("u1"), "int_val"),
    types_pb2.DT_UINT16: (np.dtype("<u2"), "int_val"),
    types_pb2.DT_UINT32: (np.dtype("<u4"), "uint32_val"),
    types_pb2.DT_UINT64: (np.dtype("<u8"), "uint64_val"),
    types_pb2.DT_BOOL: (np.dtype("?"), "bool_val"),
}
_BY_NUMPY = {dtype.newbyteorder("="): code for code, (dtype, _) in _DTYPES.items()}


def dtype_name(code: int) -> str:
    return types_pb2.DataType.Name(code) if code in types_pb2.DataType.values() else str(code)


def numpy_dtype_name(dtype: np.dtype) -> str:
    """TensorFlow's name for a numpy dtype (DT_INT64), for messages clients can act on."""
    if dtype.kind in "OSU":
        return "DT_STRING"
    code = _BY_NUMPY.get(dtype.newbyteorder("="))
    return dtype_name(code) if code is not None else str(dtype)


def numpy_dtype(code: int) -> np.dtype:
    """The numpy dtype of a DataType (object for DT_STRING)."""
    if code == types_pb2.DT_STRING:
        return np.dtype(object)
    if code not in _DTYPES:
        raise invalid_argument(f"tensor dtype {dtype_name(code)} is not supported")
    return _DTYPES[code][0]


def to_numpy(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    if proto.tensor_shape.unknown_rank:
        raise invalid_argument(f"input {name!r} has an unknown rank")
    shape = tuple(d.size for d in proto.tensor_shape.dim)
    count = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == types_pb2.DT_STRING:
        values = np.array(list(proto.string_val), dtype=object)
    elif proto.dtype not in _DTYPES:
        raise invalid_argument(f"input {name!r} has unsupported dtype {dtype_name(proto.dtype)}")
    else:
        dtype, field = _DTYPES[proto.dtype]
        if proto.tensor_content:
            if len(proto.tensor_content) != count * dtype.itemsize:
                raise invalid_argument(
                    f"input {name!r}: tensor_content holds {len(proto.tensor_content)} bytes, "
                    f"shape {list(shape)} of {dtype_name(proto.dtype)} needs "
                    f"{count * dtype.itemsize}"
                )
            return np.frombuffer(proto.tensor_content, dtype=dtype).reshape(shape)
        raw = getattr(proto, field)
        if proto.dtype == types_pb2.DT_HALF:
            values = np.array(raw, dtype=np.uint16).view(np.float16)
        else:
            values = np.array(raw, dtype=dtype)
    if values.size == count:
        return values.reshape(shape)
    if values.size == 1:  # tf.make_tensor_proto's "fill" form
        return np.full(shape, values[0], dtype=values.dtype)
    raise invalid_argument(
        f"input {name!r} has {values.size} values but shape {list(shape)} needs {count}"
    )


def to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    if array.dtype.kind in ("O", "S", "U"):
        proto.dtype = types_pb2.DT_STRING
        proto.string_val.extend(
            v if isinstance(v, bytes) else str(v).encode() for v in array.reshape(-1)
        )
        return proto
    code = _BY_NUMPY.get(array.dtype.newbyteorder("="))
    if code is None:
        raise TypeError(f"cannot encode numpy dtype {array.dtype}")
    proto.dtype = code
    proto.tensor_content = np.ascontiguousarray(array, dtype=_DTYPES[code][0]).tobytes()
    return proto


def shape_proto(shape: tuple[int | None, ...] | None) -> tensor_shape_pb2.TensorShapeProto:
    proto = tensor_shape_pb2.TensorShapeProto()
    if shape is None:
        proto.unknown_rank = True
        return proto
    for size in shape:
        proto.dim.add().size = -1 if size is None else int(size)
    return proto

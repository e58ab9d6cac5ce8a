"""TensorProto <-> numpy for every dtype, checked against TensorFlow's own converters."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from model_server.errors import ServingError
from model_server.protos import tensor_pb2, types_pb2
from model_server.tensors import numpy_dtype, shape_proto, to_numpy, to_proto

NUMERIC = [
    (types_pb2.DT_FLOAT, np.float32, "float_val"),
    (types_pb2.DT_DOUBLE, np.float64, "double_val"),
    (types_pb2.DT_HALF, np.float16, "half_val"),
    (types_pb2.DT_INT8, np.int8, "int_val"),
    (types_pb2.DT_INT16, np.int16, "int_val"),
    (types_pb2.DT_INT32, np.int32, "int_val"),
    (types_pb2.DT_INT64, np.int64, "int64_val"),
    (types_pb2.DT_UINT8, np.uint8, "int_val"),
    (types_pb2.DT_UINT16, np.uint16, "int_val"),
    (types_pb2.DT_UINT32, np.uint32, "uint32_val"),
    (types_pb2.DT_UINT64, np.uint64, "uint64_val"),
    (types_pb2.DT_BOOL, np.bool_, "bool_val"),
]
IDS = [types_pb2.DataType.Name(code) for code, _, _ in NUMERIC]


@pytest.fixture(scope="module")
def tf():
    """TensorFlow itself, to check our protos against its own; imported by the tests that use
    it, not when the suite is collected (seconds of CPU in every worker)."""
    import tensorflow

    return tensorflow


def sample(dtype: type, shape: tuple[int, ...] = (2, 3)) -> np.ndarray:
    """Values that exercise the type: negatives, extremes, fractions where they exist."""
    count = int(np.prod(shape))
    if dtype is np.bool_:
        return (np.arange(count) % 2 == 0).reshape(shape)
    info = np.finfo(dtype) if np.issubdtype(dtype, np.floating) else np.iinfo(dtype)
    values = np.linspace(float(info.min) / 4, float(info.max) / 4, count)
    if np.issubdtype(dtype, np.floating):
        values[0] = 0.5
    return values.astype(dtype).reshape(shape)


def typed_proto(code: int, field: str, array: np.ndarray) -> tensor_pb2.TensorProto:
    """The typed-field form (no tensor_content), as many non-Python clients send tensors."""
    proto = tensor_pb2.TensorProto(dtype=code)
    proto.tensor_shape.CopyFrom(shape_proto(array.shape))
    flat = array.reshape(-1)
    if code == types_pb2.DT_HALF:  # half_val carries the IEEE bit patterns
        getattr(proto, field).extend(int(v) for v in flat.view(np.uint16))
    else:
        getattr(proto, field).extend(flat.tolist())
    return proto


@pytest.mark.parametrize(("code", "dtype", "field"), NUMERIC, ids=IDS)
def test_round_trip_through_tensor_content(code, dtype, field, tf) -> None:
    array = sample(dtype)
    proto = to_proto(array)
    assert proto.dtype == code and proto.tensor_content and not getattr(proto, field)
    back = to_numpy(proto, "x")
    assert back.dtype == np.dtype(dtype) and back.shape == (2, 3)
    np.testing.assert_array_equal(back, array)
    np.testing.assert_array_equal(tf.make_ndarray(proto), array)  # TF reads ours


@pytest.mark.parametrize(("code", "dtype", "field"), NUMERIC, ids=IDS)
def test_typed_value_fields_are_read(code, dtype, field) -> None:
    array = sample(dtype)
    back = to_numpy(typed_proto(code, field, array), "x")
    assert back.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize(("code", "dtype", "field"), NUMERIC, ids=IDS)
def test_what_tensorflow_writes_is_read(code, dtype, field, tf) -> None:
    for array in (sample(dtype), sample(dtype, (1,)), np.asarray(sample(dtype, (1,))[0])):
        np.testing.assert_array_equal(to_numpy(tf.make_tensor_proto(array), "x"), array)


@pytest.mark.parametrize(("code", "dtype", "field"), NUMERIC, ids=IDS)
def test_a_single_typed_value_fills_the_shape(code, dtype, field) -> None:
    one = sample(dtype, (1,))
    proto = typed_proto(code, field, one)
    proto.tensor_shape.CopyFrom(shape_proto((2, 4)))
    back = to_numpy(proto, "x")
    assert back.shape == (2, 4) and back.dtype == np.dtype(dtype)
    assert (back == one[0]).all()


def test_tensorflows_fill_form_is_read(tf) -> None:
    proto = tf.make_tensor_proto(7, dtype=tf.int32, shape=[3, 50])
    assert len(proto.int_val) == 1 and not proto.tensor_content
    np.testing.assert_array_equal(to_numpy(proto, "tokens"), np.full((3, 50), 7, np.int32))


def test_strings_round_trip(tf) -> None:
    array = np.array([[b"caf\xc3\xa9", b""], [b"\x00\xff", b"plain"]], dtype=object)
    proto = to_proto(array)
    assert proto.dtype == types_pb2.DT_STRING
    back = to_numpy(proto, "s")
    assert back.shape == (2, 2) and back.tolist() == array.tolist()
    assert tf.make_ndarray(proto).tolist() == array.tolist()
    assert to_numpy(tf.make_tensor_proto(array), "s").tolist() == array.tolist()


def test_unicode_strings_are_sent_as_utf8() -> None:
    back = to_numpy(to_proto(np.array(["café", "ok"])), "s")
    assert back.tolist() == ["café".encode(), b"ok"]


def test_empty_and_scalar_tensors(tf) -> None:
    empty = np.zeros((0, 50), np.int32)
    assert to_numpy(to_proto(empty), "x").shape == (0, 50)
    assert to_numpy(tf.make_tensor_proto(empty), "x").shape == (0, 50)
    scalar = np.float32(2.5)
    back = to_numpy(to_proto(np.asarray(scalar)), "x")
    assert back.shape == () and back == scalar


def test_non_contiguous_and_big_endian_arrays_are_encoded_correctly() -> None:
    strided = np.arange(24, dtype=np.int32).reshape(4, 6)[:, ::2]
    np.testing.assert_array_equal(to_numpy(to_proto(strided), "x"), strided)
    big = np.arange(6, dtype=">f4").reshape(2, 3)
    back = to_numpy(to_proto(big), "x")
    assert back.dtype == np.float32
    np.testing.assert_array_equal(back, big)


def expect_invalid(proto: tensor_pb2.TensorProto, *fragments: str) -> None:
    with pytest.raises(ServingError) as caught:
        to_numpy(proto, "tokens")
    assert caught.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.http_status == 400
    for fragment in ("'tokens'", *fragments):
        assert fragment in caught.value.message


def test_tensor_content_of_the_wrong_size_is_invalid() -> None:
    proto = to_proto(np.zeros((2, 50), np.int32))
    proto.tensor_shape.dim[0].size = 3
    expect_invalid(proto, "400 bytes", "600")


def test_wrong_number_of_typed_values_is_invalid() -> None:
    proto = typed_proto(types_pb2.DT_INT32, "int_val", np.arange(5, dtype=np.int32))
    proto.tensor_shape.CopyFrom(shape_proto((2, 3)))
    expect_invalid(proto, "5 values", "6")


def test_unknown_rank_is_invalid() -> None:
    proto = tensor_pb2.TensorProto(dtype=types_pb2.DT_INT32)
    proto.tensor_shape.unknown_rank = True
    expect_invalid(proto, "unknown rank")


def test_unsupported_dtype_is_invalid(tf) -> None:
    proto = tf.make_tensor_proto(np.zeros(2, np.complex64))
    expect_invalid(proto, "DT_COMPLEX64")
    with pytest.raises(ServingError):
        numpy_dtype(types_pb2.DT_COMPLEX64)
    with pytest.raises(TypeError):
        to_proto(np.zeros(2, np.complex64))


def test_numpy_dtype_maps_every_supported_type() -> None:
    for code, dtype, _ in NUMERIC:
        assert numpy_dtype(code) == np.dtype(dtype)
    assert numpy_dtype(types_pb2.DT_STRING) == np.dtype(object)


def test_shape_proto_marks_unknown_dims_and_rank() -> None:
    assert [d.size for d in shape_proto((None, 50)).dim] == [-1, 50]
    assert shape_proto(None).unknown_rank

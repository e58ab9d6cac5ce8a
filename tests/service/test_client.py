"""Building PredictRequests and reading PredictResponses without TensorFlow's tensor helpers."""

from __future__ import annotations

import numpy as np
import pytest

from model_server.protos import predict_pb2, types_pb2
from service import errors
from service.client import ModelClient

CLIENT = ModelClient("127.0.0.1:1", "sentiment", deadline_s=1.0)


def test_the_request_carries_the_tokens_as_raw_int32_bytes() -> None:
    tokens = np.arange(100, dtype=np.int32).reshape(2, 50)
    request = CLIENT.build_request(tokens)
    assert request.model_spec.name == "sentiment"
    assert request.model_spec.signature_name == "serving_default"
    tensor = request.inputs["tokens"]
    assert tensor.dtype == types_pb2.DT_INT32
    assert [d.size for d in tensor.tensor_shape.dim] == [2, 50]
    assert np.array_equal(np.frombuffer(tensor.tensor_content, "<i4").reshape(2, 50), tokens)


def _response(values: np.ndarray, *, packed: bool, name: str = "probabilities"):
    response = predict_pb2.PredictResponse()
    tensor = response.outputs[name]
    tensor.dtype = types_pb2.DT_FLOAT
    for size in values.shape:
        tensor.tensor_shape.dim.add().size = size
    if packed:
        tensor.tensor_content = values.astype("<f4").tobytes()
    else:
        tensor.float_val.extend(values.ravel().tolist())
    return response


@pytest.mark.parametrize("packed", [True, False])
def test_outputs_are_read_from_tensor_content_or_float_val(packed: bool) -> None:
    values = np.array([[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]], dtype=np.float32)
    out = CLIENT.read_output(_response(values, packed=packed), rows=2)
    assert out.shape == (2, 3)
    assert np.allclose(out, values)


def test_a_response_that_does_not_match_the_signature_is_a_model_server_error() -> None:
    values = np.ones((1, 3), dtype=np.float32)
    with pytest.raises(errors.ModelServerError, match="no output"):
        CLIENT.read_output(_response(values, packed=True, name="logits"), rows=1)
    with pytest.raises(errors.ModelServerError, match="shape"):
        CLIENT.read_output(_response(values, packed=True), rows=2)

"""The gRPC API through tensorflow-serving-api's own stubs, against a real server process."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from model_server.protos import get_model_metadata_pb2, get_model_status_pb2, predict_pb2
from tests.model_server.conftest import TOY, predict_request


def test_predict_returns_probabilities_per_row(stubs, tokens) -> None:
    import tensorflow as tf

    response = stubs.predict.Predict(predict_request(tokens), timeout=10)
    probabilities = tf.make_ndarray(response.outputs["probabilities"])
    assert probabilities.shape == (2, 3)
    assert list(probabilities.argmax(axis=1)) == [2, 1]  # Positive, Negative
    assert response.model_spec.name == "sentiment"
    assert response.model_spec.version.value == 1
    assert response.model_spec.signature_name == "serving_default"


def test_predict_accepts_raw_tensor_content(stubs, tokens) -> None:
    request = predict_request(tokens)
    tensor = request.inputs["tokens"]
    tensor.ClearField("int_val")
    tensor.tensor_content = tokens.astype("<i4").tobytes()
    response = stubs.predict.Predict(request, timeout=10)
    values = np.frombuffer(response.outputs["probabilities"].tensor_content, "<f4")
    assert values.reshape(2, 3).argmax(axis=1).tolist() == [2, 1]


def test_pinned_version_and_named_signature(stubs, tokens) -> None:
    request = predict_request(tokens, version=1, signature_name="serving_default")
    assert stubs.predict.Predict(request, timeout=10).model_spec.version.value == 1


@pytest.mark.parametrize(
    ("spec", "code", "fragment"),
    [
        (
            {"model": "other"},
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(other)",
        ),
        (
            {"version": 7},
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(sentiment, 7)",
        ),
        ({"signature_name": "nope"}, grpc.StatusCode.NOT_FOUND, "'nope' not found"),
    ],
)
def test_unknown_model_version_or_signature_is_not_found(stubs, tokens, spec, code, fragment):
    with pytest.raises(grpc.RpcError) as info:
        stubs.predict.Predict(predict_request(tokens, **spec), timeout=10)
    assert info.value.code() == code
    assert fragment in info.value.details()


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        (
            lambda r, t: r.inputs["tokens"].CopyFrom(_proto(t.astype(np.float32))),
            "must be DT_INT32",
        ),
        (lambda r, t: r.inputs["tokens"].CopyFrom(_proto(t[:, :10])), "must have shape [-1, 50]"),
        (lambda r, t: r.inputs["words"].CopyFrom(_proto(t)), "unexpected ['words']"),
        (lambda r, t: r.inputs.pop("tokens"), "missing ['tokens']"),
        (  # no silent int64 -> int32 cast: a value could wrap
            lambda r, t: r.inputs["tokens"].CopyFrom(_proto(t.astype(np.int64))),
            "must be DT_INT32, got DT_INT64",
        ),
        (  # TensorFlow's own error keeps its code, as in TF Serving
            lambda r, t: r.inputs["tokens"].CopyFrom(_proto(np.full_like(t, 10**6))),
            "is not in [0,",
        ),
    ],
)
def test_bad_inputs_are_invalid_argument(stubs, tokens, mutate, fragment) -> None:
    request = predict_request(tokens)
    mutate(request, tokens)
    with pytest.raises(grpc.RpcError) as info:
        stubs.predict.Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert fragment in info.value.details()


def _proto(array):
    import tensorflow as tf

    return tf.make_tensor_proto(array)


def test_get_model_metadata_returns_the_signature_def(stubs) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "sentiment"
    request.metadata_field.append("signature_def")
    response = stubs.predict.GetModelMetadata(request, timeout=10)
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    serving = signatures.signature_def["serving_default"]
    assert list(serving.inputs) == ["tokens"]
    assert [d.size for d in serving.inputs["tokens"].tensor_shape.dim] == [-1, 50]
    assert list(serving.outputs) == ["probabilities"]
    assert serving.method_name == "tensorflow/serving/predict"


def test_get_model_status_says_available(stubs) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "sentiment"
    (status,) = stubs.models.GetModelStatus(request, timeout=10).model_version_status
    assert status.version == 1
    assert status.state == get_model_status_pb2.ModelVersionStatus.AVAILABLE


def test_get_model_status_of_unknown_model_is_not_found(stubs) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "other"
    with pytest.raises(grpc.RpcError) as info:
        stubs.models.GetModelStatus(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find any versions of model other"


def test_version_label_is_invalid_argument_as_no_labels_are_configured(stubs, tokens) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stubs.predict.Predict(predict_request(tokens, version_label="stable"), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "Unrecognized servable version label: stable"


@pytest.mark.parametrize(
    ("model", "version", "fields", "code", "details"),
    [
        (
            "other",
            None,
            ["signature_def"],
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(other)",
        ),
        (
            "sentiment",
            7,
            ["signature_def"],
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(sentiment, 7)",
        ),
        ("sentiment", None, ["something_else"], grpc.StatusCode.INVALID_ARGUMENT, None),
    ],
)
def test_get_model_metadata_errors(stubs, model, version, fields, code, details) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = model
    if version is not None:
        request.model_spec.version.value = version
    request.metadata_field.extend(fields)
    with pytest.raises(grpc.RpcError) as info:
        stubs.predict.GetModelMetadata(request, timeout=10)
    assert info.value.code() == code
    if details is not None:
        assert info.value.details() == details


def test_get_model_status_of_a_pinned_version(stubs) -> None:
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "sentiment"
    request.model_spec.version.value = 1
    assert stubs.models.GetModelStatus(request, timeout=10).model_version_status[0].version == 1
    request.model_spec.version.value = 2
    with pytest.raises(grpc.RpcError) as info:
        stubs.models.GetModelStatus(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert info.value.details() == "Could not find version 2 of model sentiment"


def test_classify_regress_and_multi_inference_are_unimplemented(stubs) -> None:
    from tensorflow_serving.apis import classification_pb2, inference_pb2, regression_pb2

    calls = [
        (stubs.predict.Classify, classification_pb2.ClassificationRequest()),
        (stubs.predict.Regress, regression_pb2.RegressionRequest()),
        (stubs.predict.MultiInference, inference_pb2.MultiInferenceRequest()),
    ]
    for method, request in calls:
        with pytest.raises(grpc.RpcError) as info:
            method(request, timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED


# --- a model with two versions, two inputs, two outputs and a string signature ---------------


def toy_request(x: np.ndarray, k: np.ndarray, **spec) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = TOY
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["x"].CopyFrom(_proto(x))
    request.inputs["k"].CopyFrom(_proto(k))
    return request


X = np.arange(6, dtype=np.float32).reshape(2, 3)
K = np.array([10, 20], dtype=np.int64)


def test_the_highest_numeric_version_is_served(toy_stubs) -> None:
    import tensorflow as tf

    response = toy_stubs.predict.Predict(toy_request(X, K), timeout=10)
    assert response.model_spec.version.value == 2
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["y"]), 2 * X)
    np.testing.assert_array_equal(tf.make_ndarray(response.outputs["k_plus_one"]), K + 1)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = TOY
    (status,) = toy_stubs.models.GetModelStatus(request, timeout=10).model_version_status
    assert status.version == 2


def test_older_versions_are_not_loaded(toy_stubs) -> None:
    assert toy_stubs.predict.Predict(toy_request(X, K, version=2), timeout=10)
    with pytest.raises(grpc.RpcError) as info:
        toy_stubs.predict.Predict(toy_request(X, K, version=1), timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "Specific(toy, 1)" in info.value.details()


def test_output_filter_returns_only_the_named_outputs(toy_stubs) -> None:
    request = toy_request(X, K)
    request.output_filter.append("k_plus_one")
    response = toy_stubs.predict.Predict(request, timeout=10)
    assert list(response.outputs) == ["k_plus_one"]
    request.output_filter.append("nope")
    with pytest.raises(grpc.RpcError) as info:
        toy_stubs.predict.Predict(request, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nope" in info.value.details()


def test_inputs_must_share_their_batch_size(toy_stubs) -> None:
    with pytest.raises(grpc.RpcError) as info:
        toy_stubs.predict.Predict(toy_request(X, K[:1]), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_named_signature_with_strings(toy_stubs) -> None:
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = TOY
    request.model_spec.signature_name = "lengths"
    request.inputs["text"].CopyFrom(_proto(np.array([b"ab", "café".encode(), b""], dtype=object)))
    response = toy_stubs.predict.Predict(request, timeout=10)
    assert response.model_spec.signature_name == "lengths"
    assert tf.make_ndarray(response.outputs["length"]).tolist() == [2, 5, 0]
    assert tf.make_ndarray(response.outputs["upper"]).tolist() == [b"AB", "CAFé".encode(), b""]


def test_metadata_lists_every_signature(toy_stubs) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = TOY
    request.metadata_field.append("signature_def")
    response = toy_stubs.predict.GetModelMetadata(request, timeout=10)
    assert response.model_spec.version.value == 2
    signatures = get_model_metadata_pb2.SignatureDefMap()
    response.metadata["signature_def"].Unpack(signatures)
    assert set(signatures.signature_def) == {"serving_default", "lengths"}
    assert set(signatures.signature_def["serving_default"].inputs) == {"x", "k"}
    assert set(signatures.signature_def["serving_default"].outputs) == {"y", "k_plus_one"}

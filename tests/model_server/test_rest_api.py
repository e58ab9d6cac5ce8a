"""TF Serving's REST API with plain HTTP, against a real server process."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.model_server.conftest import TOY


@pytest.fixture(scope="module")
def rest(demo_server):
    with httpx.Client(base_url=demo_server.rest_url, timeout=10) as client:
        yield client


@pytest.fixture(scope="module")
def toy(toy_server):
    with httpx.Client(base_url=toy_server.rest_url, timeout=10) as client:
        yield client


def test_model_status(rest) -> None:
    for path in ("/v1/models/sentiment", "/v1/models/sentiment/versions/1"):
        response = rest.get(path)
        assert response.status_code == 200
        assert response.json() == {
            "model_version_status": [
                {
                    "version": "1",
                    "state": "AVAILABLE",
                    "status": {"error_code": "OK", "error_message": ""},
                }
            ]
        }


def test_metadata(rest) -> None:
    body = rest.get("/v1/models/sentiment/metadata").json()
    assert body["model_spec"] == {"name": "sentiment", "signature_name": "", "version": "1"}
    serving = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    assert serving["inputs"]["tokens"]["dtype"] == "DT_INT32"
    assert serving["outputs"]["probabilities"]["dtype"] == "DT_FLOAT"


def test_predict_row_format(rest, tokens) -> None:
    response = rest.post("/v1/models/sentiment:predict", json={"instances": tokens.tolist()})
    assert response.status_code == 200
    predictions = response.json()["predictions"]
    assert [max(range(3), key=row.__getitem__) for row in predictions] == [2, 1]


def test_predict_row_format_with_named_inputs(rest, tokens) -> None:
    instances = [{"tokens": row} for row in tokens.tolist()]
    response = rest.post("/v1/models/sentiment/versions/1:predict", json={"instances": instances})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 2


def test_predict_columnar_format(rest, tokens) -> None:
    for inputs in (tokens.tolist(), {"tokens": tokens.tolist()}):
        response = rest.post(
            "/v1/models/sentiment:predict",
            json={"signature_name": "serving_default", "inputs": inputs},
        )
        assert response.status_code == 200
        outputs = response.json()["outputs"]
        assert len(outputs) == 2 and len(outputs[0]) == 3


@pytest.mark.parametrize(
    ("path", "body", "status", "fragment"),
    [
        (
            "/v1/models/other:predict",
            {"instances": [[0] * 50]},
            404,
            "Servable not found for request: Latest(other)",
        ),
        (
            "/v1/models/sentiment/versions/9:predict",
            {"instances": [[0] * 50]},
            404,
            "Servable not found for request: Specific(sentiment, 9)",
        ),
        ("/v1/models/sentiment:predict", {"instances": [[0] * 49]}, 400, "shape [-1, 50]"),
        ("/v1/models/sentiment:predict", {"instances": [[0] * 50, [0]]}, 400, "rectangular"),
        ("/v1/models/sentiment:predict", {"instances": [[0] * 50], "inputs": []}, 400, "one of"),
        ("/v1/models/sentiment:predict", {"nothing": 1}, 400, "one of"),
        ("/v1/models/sentiment:predict", [1, 2], 400, "JSON object"),
        (
            "/v1/models/sentiment:predict",
            {"instances": [[0] * 50], "signature_name": "x"},
            404,
            "'x'",
        ),
        ("/v1/models/sentiment:predict", {"instances": [[0.5] * 50]}, 400, "DT_INT32"),
        ("/v1/models/sentiment:predict", {"instances": [[True] * 50]}, 400, "DT_INT32"),
        ("/v1/models/sentiment:predict", {"instances": [[2**40] * 50]}, 400, "out of range"),
        ("/v1/models/sentiment:predict", {"instances": [[10**6] * 50]}, 400, "is not in [0,"),
        (
            "/v1/models/sentiment/labels/stable:predict",
            {"instances": [[0] * 50]},
            400,
            "Unrecognized servable version label: stable",
        ),
    ],
)
def test_predict_errors(rest, path, body, status, fragment) -> None:
    response = rest.post(path, json=body)
    assert response.status_code == status
    assert fragment in response.json()["error"]


@pytest.mark.parametrize(
    ("path", "status", "error"),
    [
        # Status asks the servable state monitor (get_model_status_impl.cc), metadata the
        # manager (basic_manager.cc): TF Serving words their NOT_FOUND differently.
        ("/v1/models/other", 404, "Could not find any versions of model other"),
        ("/v1/models/sentiment/versions/2", 404, "Could not find version 2 of model sentiment"),
        (
            "/v1/models/sentiment/versions/2/metadata",
            404,
            "Servable not found for request: Specific(sentiment, 2)",
        ),
        ("/v1/models/other/metadata", 404, "Servable not found for request: Latest(other)"),
        ("/v1/models/sentiment/labels/stable", 400, "Unrecognized servable version label: stable"),
    ],
)
def test_status_and_metadata_errors(rest, path, status, error) -> None:
    response = rest.get(path)
    assert response.status_code == status
    assert response.json() == {"error": error}


def test_invalid_json_is_400(rest) -> None:
    response = rest.post("/v1/models/sentiment:predict", content=b"{not json")
    assert response.status_code == 400
    assert "JSON Parse error" in response.json()["error"]


def test_unparsable_model_path_is_400_malformed_request(rest) -> None:
    # http_rest_api_handler.cc: a path its regex cannot parse keeps the initial status,
    # InvalidArgument("Malformed request: ..."), i.e. HTTP 400.
    response = rest.get("/v1/models/sentiment/versions/x")
    assert response.status_code == 400
    assert "Malformed request" in response.json()["error"]
    assert "error" in response.json()


def test_metrics_count_requests_by_status(rest) -> None:
    rest.post("/v1/models/sentiment:predict", json={"instances": [[0] * 50]})
    text = rest.get("/monitoring/prometheus/metrics").text
    assert "# TYPE :tensorflow:serving:request_count counter" in text
    assert ':tensorflow:serving:request_count{model_name="sentiment",status="OK"}' in text
    # A server without batching never creates batching_util.h's batch-size series.
    assert "processed_batch_size" not in text


# --- a model with two versions, two inputs, two outputs and a string signature ---------------


def test_row_format_with_several_inputs_and_outputs(toy) -> None:
    instances = [{"x": [0, 1, 2], "k": 10}, {"x": [3, 4, 5.5], "k": 20}]
    response = toy.post(f"/v1/models/{TOY}:predict", json={"instances": instances})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "predictions": [
            {"y": [0.0, 2.0, 4.0], "k_plus_one": 11},
            {"y": [6.0, 8.0, 11.0], "k_plus_one": 21},
        ]
    }


def test_columnar_format_with_several_inputs_and_outputs(toy) -> None:
    inputs = {"x": [[0, 1, 2], [3, 4, 5]], "k": [10, 20]}
    response = toy.post(f"/v1/models/{TOY}/versions/2:predict", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    assert response.json() == {
        "outputs": {"y": [[0.0, 2.0, 4.0], [6.0, 8.0, 10.0]], "k_plus_one": [11, 21]}
    }


def test_row_format_needs_every_input_named(toy) -> None:
    response = toy.post(f"/v1/models/{TOY}:predict", json={"instances": [[0, 1, 2]]})
    assert response.status_code == 400
    assert "'x'" in response.json()["error"] and "'k'" in response.json()["error"]


def test_strings_and_base64_binary_values(toy) -> None:
    binary = bytes([0, 255, 1])
    instances = ["ab", "café", {"b64": base64.b64encode(binary).decode()}]
    body = {"signature_name": "lengths", "instances": instances}
    response = toy.post(f"/v1/models/{TOY}:predict", json=body)
    assert response.status_code == 200, response.text
    encoded = [base64.b64encode(v).decode() for v in (b"ab", "café".encode(), binary)]
    assert response.json() == {
        "predictions": [
            {"length": 2, "upper": "AB", "text_bytes": {"b64": encoded[0]}},
            {"length": 5, "upper": "CAFé", "text_bytes": {"b64": encoded[1]}},
            {"length": 3, "upper": "\x00\ufffd\x01", "text_bytes": {"b64": encoded[2]}},
        ]
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"signature_name": "lengths", "instances": [1, 2]}, "takes strings"),
        ({"signature_name": "lengths", "instances": [{"b64": "%%"}]}, "not valid base64"),
        ({"signature_name": 3, "instances": ["a"]}, "'signature_name' key must be a string"),
        ({"inputs": {"x": [[0, 1, 2]], "z": [1]}}, "'z' is not an input"),
        ({"instances": [{"x": [0, 1, 2], "k": 1, "z": 2}]}, "'z' is not an input"),
    ],
)
def test_bad_values_for_the_toy_are_400(toy, body, fragment) -> None:
    response = toy.post(f"/v1/models/{TOY}:predict", json=body)
    assert response.status_code == 400, response.text
    assert fragment in response.json()["error"]


def test_status_and_metadata_name_the_served_version(toy) -> None:
    (status,) = toy.get(f"/v1/models/{TOY}").json()["model_version_status"]
    assert (status["version"], status["state"]) == ("2", "AVAILABLE")
    assert toy.get(f"/v1/models/{TOY}/versions/1").status_code == 404
    metadata = toy.get(f"/v1/models/{TOY}/metadata").json()
    assert metadata["model_spec"]["version"] == "2"
    assert set(metadata["metadata"]["signature_def"]["signature_def"]) == {
        "serving_default",
        "lengths",
    }

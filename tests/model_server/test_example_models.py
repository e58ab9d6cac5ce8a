"""The embedded server on models unlike the demo: several named inputs of mixed dtypes
batched together, strings, and a model without a batch dimension served unbatched."""

from __future__ import annotations

import tempfile

import httpx

from model_server.batching_parameters import BatchingParameters
from scripts.example_models import build_tabular_model
from tests.service.test_generic_predict import TABULAR_ROWS
from tests.support.model_server import running_model_server


def predict(server, body) -> httpx.Response:
    return httpx.post(f"{server.rest_url}/v1/models/{server.model_name}:predict", json=body)


def test_mixed_dtype_inputs_are_batched_and_split_back_per_request(example_models):
    batching = BatchingParameters(max_batch_size=8, batch_timeout_micros=20_000)
    with running_model_server(
        example_models["tabular"], model_name="tabular", batching=batching
    ) as server:
        alone = [predict(server, {"instances": [row]}).json() for row in TABULAR_ROWS]
        together = predict(server, {"instances": TABULAR_ROWS}).json()
    assert together["predictions"] == [a["predictions"][0] for a in alone]
    assert set(together["predictions"][0]) == {"score", "bucket"}


def test_a_model_without_batch_dimension_is_served_unbatched(example_models):
    with running_model_server(example_models["unbatched"], model_name="unbatched") as server:
        answer = predict(server, {"inputs": [1.0, 2.0, 3.5]})
        wrong = predict(server, {"inputs": [[1.0, 2.0, 3.5]]})
    assert answer.status_code == 200 and answer.json() == {"outputs": 6.5}
    assert wrong.status_code == 400 and "shape [3]" in wrong.json()["error"]


def test_building_a_model_leaves_nothing_in_the_temporary_directory(tmp_path, monkeypatch):
    """Tracing writes AutoGraph's modules to the temporary directory; the build removes them."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    build_tabular_model(tmp_path / "tabular")
    assert list((tmp_path / "tmp").iterdir()) == []

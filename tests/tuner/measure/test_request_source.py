"""Request sources: a JSON-lines file, the model's own warm-up file, or bodies generated from
the signature; each turned into the bodies the load and the warm-up send, and every source
that cannot give a valid body is one sentence before any trial."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import orjson
import pytest

from model_server.protos import predict_pb2
from model_server.rest_json import predict_body
from model_server.signature_spec import SignatureSpec
from model_server.tensors import to_proto
from scripts.example_models import write_warmup
from tuner.errors import ConfigError
from tuner.load import LoadProfile
from tuner.measure.model_signature import read_signature
from tuner.measure.request_source import request_bodies, with_requests


def checked(body: bytes, spec: SignatureSpec) -> dict[str, np.ndarray]:
    """What the service does with a body: convert, then check dtypes and shapes."""
    parsed = predict_body(orjson.loads(body))
    return spec.check(parsed.inputs(spec))


@pytest.mark.parametrize("kind", ["image", "tabular", "text"])
def test_generated_bodies_fit_the_signature(example_models, kind):
    bodies = request_bodies(None, 3, example_models[kind], Path)
    spec = read_signature(example_models[kind] / "1", "serving_default")
    assert len(bodies) > 1 and len(set(bodies)) > 1  # varied values, not one body repeated
    for body in bodies:
        inputs = checked(body, spec)
        assert {value.shape[0] for value in inputs.values()} == {3}


def test_a_model_without_batch_dimension_cannot_generate(example_models):
    with pytest.raises(ConfigError, match="no batch dimension"):
        request_bodies(None, 2, example_models["unbatched"], Path)


def test_the_models_warmup_file_is_read_as_requests(example_models, tmp_path):
    base = Path(shutil.copytree(example_models["tabular"], tmp_path / "tabular"))
    request = predict_pb2.PredictRequest()
    request.model_spec.signature_name = "serving_default"
    for name, value in {
        "age": np.array([30.0], np.float32),
        "clicks": np.array([2], np.int64),
        "country": np.array([b"\xff\x00binary"], object),
        "embedding": np.zeros((1, 4), np.float32),
    }.items():
        request.inputs[name].CopyFrom(to_proto(value))
    write_warmup(base / "1", [request, request])
    bodies = request_bodies("model-warmup", 0, base, Path)
    assert len(bodies) == 2
    inputs = checked(bodies[0], read_signature(base / "1", "serving_default"))
    assert inputs["country"].tolist() == [b"\xff\x00binary"]  # bytes survive as b64
    assert inputs["clicks"].dtype == np.int64


def test_a_jsonl_file_is_sent_as_written_and_attached_to_the_profile(tmp_path):
    path = tmp_path / "requests.jsonl"
    lines = [{"instances": [[1.0, 2.0]]}, {"inputs": {"x": [[3.0, 4.0]]}}]
    path.write_text("\n".join(orjson.dumps(line).decode() for line in lines) + "\n\n")
    bodies = request_bodies(str(path), 0, tmp_path, Path)
    assert [orjson.loads(b) for b in bodies] == lines
    profile = with_requests(LoadProfile(), bodies, tmp_path / "work", "m")
    assert profile.predict_path == "/v1/models/m:predict"
    assert profile.requests_file.read_bytes().splitlines() == bodies
    assert with_requests(LoadProfile(), None, tmp_path, "m") == LoadProfile()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "cannot read"),
        ("", "holds no request"),
        ("{not json}\n", "line 1 of .* is not JSON"),
        ('{"instances": [1]}\n[1, 2]\n', "line 2 .* must be an object"),
        ('{"instances": [1], "inputs": [1]}\n', 'line 1 .* "instances" or "inputs"'),
    ],
    ids=["missing", "empty", "not_json", "not_object", "both_forms"],
)
def test_a_bad_requests_file_is_one_sentence(tmp_path, content, expected):
    path = tmp_path / "requests.jsonl"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=expected) as caught:
        request_bodies(str(path), 0, tmp_path, Path)
    assert "\n" not in str(caught.value)


def test_model_warmup_without_a_file_and_two_sources_are_refused(example_models, tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        request_bodies("model-warmup", 0, example_models["image"], Path)
    with pytest.raises(ConfigError, match="both set"):
        request_bodies("x.jsonl", 2, example_models["image"], Path)


def test_optimize_refuses_a_model_batching_cannot_apply_to(tmp_path, example_models):
    from tests.tuner.test_end_to_end import make_config
    from tuner.study.run import optimize

    config = make_config(tmp_path, example_models["unbatched"])
    with pytest.raises(ConfigError, match="batching cannot apply"):
        optimize(config, say=lambda line: None)
    assert not (tmp_path / "tuning.db").exists()  # refused before any study was created

"""A decoded REST body is dropped once its tensors are made, before the inference is awaited."""

from __future__ import annotations

import gc

import numpy as np
import orjson

from model_server.rest_json import parse_body
from model_server.signature_spec import SignatureSpec, TensorSpec

IMAGE = SignatureSpec(
    name="serving_default",
    inputs={"image": TensorSpec("image", np.dtype(np.float32), 1, (-1, 32, 32, 3))},
    outputs={"scores": TensorSpec("scores", np.dtype(np.float32), 1, (-1, 10))},
)
RAW = orjson.dumps({"instances": np.random.default_rng(0).random((2, 32, 32, 3)).tolist()})


def _tracked_lists() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if type(o) is list)


def test_what_waits_for_the_inference_holds_no_decoded_lists() -> None:
    before = _tracked_lists()
    body = parse_body(RAW)
    decoded = _tracked_lists() - before
    inputs = body.inputs(IMAGE)
    waiting = body.without_data()
    del body
    # 2 images of 32 rows of 32 pixels: ~2,000 lists the collector would walk on every young
    # collection while the request waited, multiplied by the requests in flight.
    assert decoded > 2_000
    assert _tracked_lists() - before < 10
    assert inputs["image"].shape == (2, 32, 32, 3) and waiting.row


def test_the_answer_keeps_the_requests_form() -> None:
    outputs = {"scores": np.zeros((2, 10), np.float32)}
    row = parse_body(RAW)
    columnar = parse_body(orjson.dumps({"inputs": {"image": [[[[0.0] * 3] * 32] * 32]}}))
    assert row.without_data().render(outputs) == row.render(outputs)
    assert columnar.without_data().render(outputs) == columnar.render(outputs)
    assert set(row.without_data().render(outputs)) == {"predictions"}
    assert set(columnar.without_data().render(outputs)) == {"outputs"}

"""A decoded REST body is dropped once its tensors are made, before the inference is awaited."""

from __future__ import annotations

import gc
import types

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


CODE_AND_CLASSES = (type, types.ModuleType, types.FunctionType)


def lists_held(root: object) -> int:
    """The lists reachable from `root` through its data (not its class, whose module reaches
    everything): what the collector walks while `root` is alive. Counted from the object, not
    the whole heap, which other threads change meanwhile."""
    seen: set[int] = set()
    stack, count = [root], 0
    while stack:
        obj = stack.pop()
        if id(obj) in seen or not gc.is_tracked(obj) or isinstance(obj, CODE_AND_CLASSES):
            continue
        seen.add(id(obj))
        count += type(obj) is list
        stack.extend(gc.get_referents(obj))
    return count


def test_what_waits_for_the_inference_holds_no_decoded_lists() -> None:
    body = parse_body(RAW)
    inputs = body.inputs(IMAGE)
    waiting = body.without_data()
    # 2 images of 32 rows of 32 pixels: ~2,100 lists the collector would walk on every young
    # collection while the request waited, multiplied by the requests in flight.
    assert lists_held(body) > 2_000
    assert lists_held(waiting) < 10
    assert inputs["image"].shape == (2, 32, 32, 3) and waiting.row


def test_the_answer_keeps_the_requests_form() -> None:
    outputs = {"scores": np.zeros((2, 10), np.float32)}
    row = parse_body(RAW)
    columnar = parse_body(orjson.dumps({"inputs": {"image": [[[[0.0] * 3] * 32] * 32]}}))
    assert row.without_data().render(outputs) == row.render(outputs)
    assert columnar.without_data().render(outputs) == columnar.render(outputs)
    assert set(row.without_data().render(outputs)) == {"predictions"}
    assert set(columnar.without_data().render(outputs)) == {"outputs"}

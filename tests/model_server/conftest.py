"""Servers and clients for the embedded model server's tests, built with TF Serving's own stubs.

Start-ups cost seconds of TensorFlow import and load on a small machine, so the plain
servers are session-scoped and shared by every module that only needs "a running server"
(the demo one with the whole suite: `shared_model_server` in tests/conftest.py); tests that
read metrics compare scrapes before and after their own traffic.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from model_server.protos import (
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)
from scripts.own_tempdir import own_tempdir
from service.text import Vocabulary
from tests.support.model_server import ModelServerProcess, running_model_server

SENTENCES = ["I had an excellent service", "That is really a bad service"]
TOY = "toy"


@pytest.fixture(scope="module")
def vocab(demo_model_dir) -> Vocabulary:
    return Vocabulary.from_model_dir(demo_model_dir)


@pytest.fixture(scope="module")
def tokens(vocab) -> np.ndarray:
    return vocab.encode_batch(SENTENCES)


@pytest.fixture(scope="session")
def demo_server(shared_model_server: ModelServerProcess) -> ModelServerProcess:
    """The demo model without batching, shared by the gRPC, REST and batching tests (and by
    every other test of the session that only reads from it)."""
    return shared_model_server


def build_toy_model(base: Path) -> Path:
    """Versions 1 and 2 of a model with two inputs, two outputs and a string signature.

    Version N multiplies `x` by N, so an output shows which version answered; `3/` (no
    SavedModel inside) and `latest/` (not a number) must both be ignored.
    """
    import tensorflow as tf

    class Toy(tf.Module):
        def __init__(self, factor: float) -> None:
            super().__init__()
            self.factor = tf.Variable(factor, dtype=tf.float32)

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, 3], tf.float32, name="x"),
                tf.TensorSpec([None], tf.int64, name="k"),
            ]
        )
        def scale(self, x, k):
            return {"y": x * self.factor, "k_plus_one": k + 1}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
        def lengths(self, text):
            return {
                "length": tf.strings.length(text),
                "upper": tf.strings.upper(text),
                "text_bytes": text,  # `_bytes`: binary, base64 in REST responses
            }

    for version in (1, 2):
        toy = Toy(float(version))
        signatures = {"serving_default": toy.scale, "lengths": toy.lengths}
        with own_tempdir():  # AutoGraph's modules (scripts/own_tempdir.py)
            tf.saved_model.save(toy, str(base / str(version)), signatures=signatures)
    (base / "3").mkdir()
    (base / "latest").mkdir()
    return base


@pytest.fixture(scope="session")
def toy_server(tmp_path_factory) -> Iterator[ModelServerProcess]:
    base = build_toy_model(tmp_path_factory.mktemp("toy"))
    with running_model_server(base, model_name=TOY) as server:
        yield server


def predict_request(tokens: np.ndarray, model: str = "sentiment", **spec):
    """A PredictRequest as TF Serving's docs build it (tf.make_tensor_proto)."""
    import tensorflow as tf

    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = value
        else:
            setattr(request.model_spec, key, value)
    request.inputs["tokens"].CopyFrom(tf.make_tensor_proto(tokens))
    return request


class Stubs:
    def __init__(self, target: str) -> None:
        self.channel = grpc.insecure_channel(target)
        self.predict = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)
        self.models = model_service_pb2_grpc.ModelServiceStub(self.channel)

    def close(self) -> None:
        self.channel.close()


@pytest.fixture(scope="module")
def stubs(demo_server) -> Iterator[Stubs]:
    stubs = Stubs(demo_server.grpc_target)
    yield stubs
    stubs.close()


@pytest.fixture(scope="module")
def toy_stubs(toy_server) -> Iterator[Stubs]:
    stubs = Stubs(toy_server.grpc_target)
    yield stubs
    stubs.close()

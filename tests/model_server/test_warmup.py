"""Replaying assets.extra/tf_serving_warmup_requests at load, as TF Serving 2.19 does: every
record (times --num_request_iterations_for_warmup) before the model is AVAILABLE, and a record
that fails or does not parse fails the load (exit 255, one line naming the cause)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from model_server.flags import EXIT_CANNOT_START
from model_server.protos import predict_pb2
from model_server.tensors import to_proto
from scripts.example_models import write_warmup
from tests.model_server.test_startup_errors import run_server
from tests.support.model_server import running_model_server
from tuner.process import free_port


def image_request(rows: int, input_name: str = "image") -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "image"
    image = np.zeros((rows, 32, 32, 3), np.float32)
    request.inputs[input_name].CopyFrom(to_proto(image))
    return request


def last_line(stderr: str) -> str:
    """The line a launcher shows: the server's one-sentence reason, no traceback."""
    assert "Traceback" not in stderr
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("model_server: error: ")
    return line


@pytest.fixture
def image_copy(example_models, tmp_path) -> Path:
    return Path(shutil.copytree(example_models["image"], tmp_path / "image"))


def test_every_record_is_replayed_before_the_model_is_available(image_copy):
    write_warmup(image_copy / "1", [image_request(1), image_request(2), image_request(4)])
    with running_model_server(
        image_copy, model_name="image", extra_args=["--num_request_iterations_for_warmup=2"]
    ) as server:
        log = server.log_text()
    assert "event=warmup_done" in log
    assert "records=3" in log
    assert log.index("event=warmup_done") < log.index("event=available")


def test_no_warmup_when_disabled(image_copy):
    write_warmup(image_copy / "1", [image_request(1, input_name="wrong")])
    with running_model_server(
        image_copy, model_name="image", extra_args=["--enable_model_warmup=false"]
    ) as server:
        assert "event=warmup_done" not in server.log_text()


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        ([image_request(1), image_request(1, input_name="wrong")], "missing ['image']"),
        ([b"not a prediction log"], "Failed to parse warmup record"),
    ],
    ids=["failing_request", "malformed_record"],
)
def test_a_bad_record_fails_the_load(image_copy, records, expected):
    if isinstance(records[0], bytes):
        import tensorflow as tf

        path = image_copy / "1" / "assets.extra" / "tf_serving_warmup_requests"
        path.parent.mkdir()
        with tf.io.TFRecordWriter(str(path)) as writer:
            for record in records:
                writer.write(b"\xff\xff\xff" + record)
    else:
        write_warmup(image_copy / "1", records)
    result = run_server(
        f"--port={free_port()}", "--model_name=image", f"--model_base_path={image_copy}"
    )
    assert result.returncode == EXIT_CANNOT_START
    assert expected in last_line(result.stderr)


def test_a_file_that_is_not_a_tfrecord_fails_the_load(image_copy):
    path = image_copy / "1" / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir()
    path.write_bytes(b"this is not a TFRecord file at all, just some bytes")
    result = run_server(
        f"--port={free_port()}", "--model_name=image", f"--model_base_path={image_copy}"
    )
    assert result.returncode == EXIT_CANNOT_START
    assert "TFRecord format" in last_line(result.stderr)

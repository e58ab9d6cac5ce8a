"""Opt-in: the docker backend with the real tensorflow/serving image, where the engine can
pull it (Docker Hub). Written against tensorflow/serving:2.19.0. Run it with
TUNER_TEST_TF_SERVING_IMAGE=tensorflow/serving:2.19.0 make test-docker.

The real server installs no SIGTERM handler; under the engine's init it dies of SIGTERM at
once (exit 143) instead of waiting for the stop timeout's SIGKILL (137)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from model_server.batching_parameters import BatchingParameters
from service.text import Vocabulary
from tests.docker.engine import READY_TIMEOUT_S
from tests.docker.test_docker_backend import predict_over_grpc
from tuner.process import free_port
from tuner.servers import DockerBackend, ServerSpec
from tuner.servers.metrics import scrape

IMAGE = os.environ.get("TUNER_TEST_TF_SERVING_IMAGE")


@pytest.mark.skipif(
    not IMAGE, reason="set TUNER_TEST_TF_SERVING_IMAGE where the engine can pull it"
)
def test_real_tensorflow_serving_starts_serves_and_stops_on_sigterm(
    engine, demo_model_dir: Path, tmp_path: Path
) -> None:
    spec = ServerSpec(
        "sentiment", demo_model_dir, free_port(), free_port(), ready_timeout_s=READY_TIMEOUT_S
    )
    backend = DockerBackend(spec, image=IMAGE, client=engine)
    backend.prepare(tmp_path)  # pulls the image when missing
    try:
        backend.start(BatchingParameters(max_batch_size=8), {}, tmp_path / "trial-0000")
        labels = predict_over_grpc(backend.grpc_target, Vocabulary.from_model_dir(
            demo_model_dir), 8)  # fmt: skip
        metrics = scrape(backend.metrics_url, model_name="sentiment")
    finally:
        backend.stop()
    assert labels == [[2, 1]] * 8
    assert metrics.histogram_counts["processed_batch_size"] > 0
    assert backend.last_stop[1] == 143

"""The docker backend on a real engine with the model-server image: start to AVAILABLE with a
batching file, predictions from the tuner side, metrics, the engine's CPU figure, labels, a
stop by SIGTERM (not by the engine's kill timeout), the log kept, and one-sentence failures."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import docker
import grpc
import pytest
from docker.errors import NotFound

from model_server.batching_parameters import BatchingParameters
from model_server.protos import prediction_service_pb2_grpc
from service.client import ModelClient
from service.text import Vocabulary
from tests.docker.engine import IMAGES, READY_TIMEOUT_S
from tuner.coordination.leftovers import marking_children
from tuner.process import free_port
from tuner.servers import BackendUnavailableError, DockerBackend, ServerSpec
from tuner.servers.docker_backend import SIGKILL_EXIT, container_name
from tuner.servers.docker_engine import (
    HOST_LABEL,
    LABEL,
    OWNER_LABEL,
    STUDY_LABEL,
    TRIAL_LABEL,
    WORKDIR_LABEL,
    ImageUnavailableError,
)
from tuner.servers.metrics import scrape

SENTENCES = ["I had an excellent service", "That is really a bad service"]


def spec_for(model_dir: Path) -> ServerSpec:
    return ServerSpec(
        "sentiment", model_dir, free_port(), free_port(), ready_timeout_s=READY_TIMEOUT_S
    )


def predict_over_grpc(target: str, vocab: Vocabulary, n: int) -> list[list[int]]:
    """`n` concurrent Predict calls with TF Serving's own stubs; the labels of each."""
    client = ModelClient(target, "sentiment", deadline_s=30.0)
    request = client.build_request(vocab.encode_batch(SENTENCES))
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(lambda _: stub.Predict(request, timeout=30.0), range(n)))
    rows = [client.read_output(r, len(SENTENCES)) for r in responses]
    return [row.argmax(axis=1).tolist() for row in rows]


def test_start_predict_metrics_cpu_stop_and_labels(
    engine, demo_model_dir: Path, tmp_path: Path
) -> None:
    study_dir = tmp_path / "runs" / "docker-study"
    trial_dir = study_dir / "trial-0001"
    backend = DockerBackend(spec_for(demo_model_dir), image=IMAGES["model-server"], client=engine)
    batching = BatchingParameters(
        max_batch_size=16, batch_timeout_micros=20_000, num_batch_threads=2
    )
    with marking_children(study_dir):
        try:
            backend.start(batching, {"tensorflow_intra_op_parallelism": "1"}, trial_dir)
            container = engine.containers.get(backend._container.id)
            labels = container.labels
            host_config = container.attrs["HostConfig"]
            meter = backend.cpu_meter()
            before = scrape(backend.metrics_url, model_name="sentiment")
            labels_by_call = predict_over_grpc(backend.grpc_target, Vocabulary.from_model_dir(
                demo_model_dir), 48)  # fmt: skip
            after = scrape(backend.metrics_url, model_name="sentiment")
            cpu = meter.percent()
            assert backend.is_running()
        finally:
            backend.stop()

    assert labels_by_call == [[2, 1]] * 48  # positive, negative: every call answered
    # Batching was on (the mounted file): the server counted the batches it processed.
    # (As in TF Serving, the series exists only once a batch has run: none before the calls.)
    assert after.histogram_counts["processed_batch_size"] > before.histogram_counts.get(
        "processed_batch_size", 0
    )
    assert cpu is not None and cpu > 0  # the engine's stats API, not host pids
    assert labels[LABEL] == "model-server" and labels[TRIAL_LABEL] == "trial-0001"
    assert labels[STUDY_LABEL] == "docker-study"
    assert labels[WORKDIR_LABEL] == str(study_dir.resolve())
    assert labels[OWNER_LABEL].startswith(f"{os.getpid()}:") and labels[HOST_LABEL]
    assert host_config.get("Init") is True
    bindings = host_config["PortBindings"]
    assert {b["HostIp"] for v in bindings.values() for b in v} == {"127.0.0.1"}

    # Stopped by SIGTERM through the init: the server's own clean exit, not the engine's
    # SIGKILL after the stop timeout (exit 137). The time is in bench/RESULTS.md.
    _seconds, exit_code = backend.last_stop
    assert exit_code == 0 and exit_code != SIGKILL_EXIT
    with pytest.raises(NotFound):
        engine.containers.get(container.id)
    log = (trial_dir / "server.log").read_text()
    assert "event=available" in log and "event=stopped exit_code=0" in log
    assert "max_batch_size=16" in log  # the batching file the container read
    assert (trial_dir / "batching_parameters.txt").exists()


def test_missing_image_that_cannot_be_pulled_is_one_sentence(engine, tmp_path: Path) -> None:
    image = "localhost:1/tuner-no-such-image:0"  # a registry that refuses the connection
    backend = DockerBackend(spec_for(tmp_path), image=image, client=engine)
    with pytest.raises(ImageUnavailableError) as caught:
        backend.prepare(tmp_path)
    message = str(caught.value)
    assert caught.value.reason == "image_unavailable"
    assert message.startswith(f"the image {image} is not on the Docker engine and pulling it")
    assert "server.docker_image" in message and "\n" not in message


def test_engine_gone_mid_study(engine, demo_model_dir: Path, tmp_path: Path) -> None:
    """A second API service on its own socket stands for the engine; stopping it mid-trial
    must give one sentence (backend_unavailable), and stop() must not raise."""
    if os.environ.get("TUNER_ENGINE") != "podman":
        pytest.fail("this test needs the podman engine `make test-docker` starts")
    socket_path = tmp_path / "engine.sock"
    spec = spec_for(demo_model_dir)
    service = subprocess.Popen(
        ["podman", "system", "service", "--time=0", f"unix://{socket_path}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not socket_path.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        client = docker.DockerClient(base_url=f"unix://{socket_path}", timeout=30)
        backend = DockerBackend(spec, image=IMAGES["model-server"], client=client)
        backend.start(None, {}, tmp_path / "trial-0001")
        service.kill()
        service.wait()
        with pytest.raises(BackendUnavailableError) as caught:
            backend.is_running()
        backend.stop()  # the engine is gone: nothing raises
    finally:
        if service.poll() is None:
            service.kill()
            service.wait()
        # The container outlived its API service; the suite's engine removes it.
        with contextlib.suppress(NotFound):
            engine.containers.get(container_name(spec)).remove(force=True)
    assert caught.value.reason == "backend_unavailable"
    message = str(caught.value)
    assert message.startswith("the Docker engine at ") and "stopped answering" in message
    assert "\n" not in message

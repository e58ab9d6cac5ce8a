"""Request sources with load from other hosts: `python -m tuner load-worker` processes send the
study's request bodies, which the tuner's Locust master sends them (they have no copy).

Real processes throughout: the embedded model server serving the tabular example model, the
service in front of it, the master and two load-workers on loopback. What the service
received is read from its access log (path and rows of every request)."""

from __future__ import annotations

import json
import re

import httpx
import orjson

from tests.service.conftest import running_service, wait_ready
from tests.support.model_server import running_model_server
from tests.tuner.load.test_load_runner import locust_processes
from tests.tuner.load.test_load_workers import load_worker, profile_of, write_config
from tuner.load.generator import OpenLoopGenerator
from tuner.load.locust_process import fingerprint
from tuner.measure.request_source import for_target, with_requests
from tuner.process import free_port

ROW = {"age": 31.0, "clicks": 4, "country": "fr", "embedding": [0.1, 0.2, 0.3, 0.4]}
# One row and three rows: the service's access log tells them apart, and both differ from
# anything the locustfile would send by itself (the demo's texts to /predict).
BODIES = [orjson.dumps({"instances": [ROW]}), orjson.dumps({"instances": [ROW] * 3})]


def test_remote_workers_send_the_configured_requests_without_a_copy(tmp_path, example_models):
    port = free_port()
    # The load hosts' tuner.toml names a requests file that exists on the tuner host only.
    config = write_config(tmp_path, port, requests=str(tmp_path / "tuner-host-only.jsonl"))
    profile = with_requests(profile_of(config), BODIES, tmp_path / "study", "tabular")
    model = example_models["tabular"]
    trial = tmp_path / "trial"
    with (
        running_model_server(model, model_name="tabular") as server,
        running_service(server.grpc_target, model, tmp_path, "--model-name", "tabular") as svc,
        load_worker(config, port, "host-a", tmp_path / "a"),
        load_worker(config, port, "host-b", tmp_path / "b"),
    ):
        wait_ready(svc.url, 60)
        with OpenLoopGenerator(profile, svc.url, trial) as gen:
            result = gen.step(20.0)
        svc.stop()
    assert locust_processes(trial) == []
    assert result.requests > 0 and result.failures == 0, result.failures_by_code
    received = [line for line in svc.access_lines() if line["path"] != "/readyz"]
    assert {line["path"] for line in received} - {"/healthz"} == {"/v1/models/tabular:predict"}
    predicted = [line for line in received if line["path"].startswith("/v1/")]
    assert {line["status"] for line in predicted} == {200}
    assert sorted({line["texts"] for line in predicted}) == [1, 3]
    assert len(predicted) >= result.requests
    stream = [json.loads(line) for line in (trial / "intervals.jsonl").read_text().splitlines()]
    ready = [line for line in stream if line.get("ready")]
    assert {line["worker"] for line in ready} == {"host-a", "host-b"}
    # Each worker's fingerprint hashes the bodies it received: the tuner's, byte for byte.
    assert {line["fingerprint"] for line in ready} == {fingerprint(profile)}
    assert "requests=missing" not in fingerprint(profile)


def test_remote_workers_send_the_configured_requests_over_grpc(tmp_path, example_models):
    """load.target = "grpc": the workers get the serialized PredictRequests too, and the
    model server answers every one of them OK."""
    port = free_port()
    # The workers' config names a source too; only the tuner host reads it.
    config = write_config(tmp_path, port, generate_rows=2, target="grpc")
    model = example_models["tabular"]
    grpc_bodies = for_target("grpc", BODIES, model, "tabular")
    profile = with_requests(profile_of(config), BODIES, tmp_path / "study", "tabular", grpc_bodies)
    with (
        running_model_server(model, model_name="tabular") as server,
        load_worker(config, port, "host-a", tmp_path / "a"),
        load_worker(config, port, "host-b", tmp_path / "b"),
    ):
        with OpenLoopGenerator(profile, f"http://{server.grpc_target}", tmp_path / "t") as gen:
            result = gen.step(20.0)
        metrics = httpx.get(f"{server.rest_url}/monitoring/prometheus/metrics").text
    assert result.requests > 0 and result.failures == 0, result.failures_by_code
    served = re.search(
        r'request_latency_count\{model_name="tabular",API="Predict",entrypoint="GRPC"\} (\d+)',
        metrics,
    )
    assert served is not None, metrics
    assert int(served[1]) >= result.requests
    assert 'status="OK"' in metrics and "NOT_FOUND" not in metrics

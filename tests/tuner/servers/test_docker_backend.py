"""The docker backend's logic without a Docker engine: a fake of the Docker SDK's client.

`make test` needs no engine, so `auto` really falls back here. The fake client records the SDK
calls; its "running" container is the embedded model server launched with the container's
command, mounts and published ports translated to the host, so readiness, metrics and removal
are exercised for real. The same backend against a real engine (podman's Docker API) and the
real images is tests/docker/, run by `make test-docker`.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import docker.errors
import pytest
import requests

from model_server.batching_parameters import BatchingParameters
from tuner.coordination.leftovers import marking_children
from tuner.process import free_port, stop_child
from tuner.servers import (
    BackendUnavailableError,
    DockerBackend,
    EmbeddedBackend,
    PortConflictError,
    ServerConfigError,
    ServerExitedBeforeReady,
    ServerSpec,
    create_backend,
)
from tuner.servers.docker_backend import container_spec
from tuner.servers.docker_engine import (
    HOST_LABEL,
    LABEL,
    OWNER_LABEL,
    STUDY_LABEL,
    TRIAL_LABEL,
    WORKDIR_LABEL,
    ImageUnavailableError,
    container_labels,
)
from tuner.servers.metrics import scrape
from tuner.servers.ports import port_in_use


class FakeContainer:
    def __init__(self, client: FakeClient, kwargs: dict, log_dir: Path) -> None:
        self.client = client
        self.kwargs = kwargs
        self.name = kwargs["name"]
        self.labels = kwargs.get("labels", {})
        self.cpu_ns = 0
        self.status = "running"
        self.attrs: dict = {"State": {"ExitCode": 0}}
        self.removed = False
        self.proc: subprocess.Popen | None = None
        self.log_file = log_dir / f"{self.name}.log"
        if client.mode == "exit":
            self.log_file.write_bytes(b"E model_server.cc] the container was told to fail\n")
            self.status, self.attrs = "exited", {"State": {"ExitCode": 1}}
        else:
            self.proc = self._launch()

    def _launch(self) -> subprocess.Popen:
        """The container's command on the host: mounts and published ports mapped back."""
        inside_to_host = {v["bind"]: host for host, v in self.kwargs["volumes"].items()}
        published = {int(k.split("/")[0]): port for k, (_, port) in self.kwargs["ports"].items()}
        args = []
        for arg in self.kwargs["command"]:
            name, _, value = arg.partition("=")
            if name in ("--port", "--rest_api_port"):
                value = str(published[int(value)])
            value = inside_to_host.get(value, value)
            args.append(f"{name}={value}" if value else name)
        log = self.log_file.open("wb")
        return subprocess.Popen(
            [sys.executable, "-m", "model_server", *args], stdout=log, stderr=subprocess.STDOUT
        )

    def reload(self) -> None:
        if self.removed:
            raise docker.errors.NotFound("no such container")
        if self.proc is not None and self.proc.poll() is not None:
            self.status = "exited"
            self.attrs = {"State": {"ExitCode": self.proc.returncode}}

    def stats(self, stream: bool, one_shot: bool) -> dict:
        assert stream is False and one_shot is True
        self.cpu_ns += 500_000_000  # half a CPU-second between two reads
        return {"cpu_stats": {"cpu_usage": {"total_usage": self.cpu_ns}}}

    def logs(self, **_kwargs) -> bytes:
        return self.log_file.read_bytes()

    def stop(self, timeout: int) -> None:
        self.client.calls.append(("stop", self.name, timeout))
        if self.proc is not None:
            stop_child(self.proc, timeout)
        self.status = "exited"
        self.attrs = {"State": {"ExitCode": 143 if self.proc is None else self.proc.returncode}}

    def remove(self, force: bool = False) -> None:
        self.client.calls.append(("remove", self.name, force))
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.removed = True


class FakeContainers:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def run(self, **kwargs) -> FakeContainer:
        self.client.calls.append(("run", kwargs))
        if self.client.mode == "port_taken":
            raise docker.errors.APIError(
                "500 Server Error: driver failed programming external connectivity: "
                "Bind for 127.0.0.1:8500 failed: port is already allocated"
            )
        container = FakeContainer(self.client, kwargs, self.client.log_dir)
        self.client.containers_made.append(container)
        return container

    def list(self, filters: dict, **_kwargs) -> list[FakeContainer]:
        self.client.calls.append(("list", filters))
        if self.client.mode == "engine_gone":
            raise requests.exceptions.ConnectionError("Connection aborted: no such file")
        wanted = dict(f.split("=", 1) for f in filters["label"])
        return [
            c
            for c in self.client.listed
            if all(c.labels.get(k) == v for k, v in wanted.items()) and not c.removed
        ]

    def get(self, name: str) -> FakeContainer:
        self.client.calls.append(("get", name))
        if self.client.stale is not None and not self.client.stale.removed:
            return self.client.stale
        raise docker.errors.NotFound(f"No such container: {name}")


class FakeImages:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def get(self, image: str) -> object:
        self.client.calls.append(("images.get", image))
        if image not in self.client.images_present:
            raise docker.errors.ImageNotFound(image)
        return object()

    def pull(self, image: str) -> object:
        self.client.calls.append(("images.pull", image))
        if self.client.mode == "pull_refused":
            raise docker.errors.APIError(
                "500 Server Error: pull access denied for tensorflow/serving, repository does "
                "not exist or may require 'docker login'"
            )
        self.client.images_present.add(image)
        return object()


class FakeClient:
    """Stands in for docker.DockerClient: only the calls the backend makes."""

    def __init__(self, log_dir: Path, mode: str = "serve") -> None:
        self.mode = mode
        self.log_dir = log_dir
        self.calls: list[tuple] = []
        self.containers_made: list[FakeContainer] = []
        self.images_present = {"tensorflow/serving:2.19.0"}
        self.stale: FakeContainer | None = None
        self.listed: list[FakeContainer] = []
        self.containers = FakeContainers(self)
        self.images = FakeImages(self)

    def ping(self) -> bool:
        return True


def spec_for(model_dir: Path, **overrides) -> ServerSpec:
    settings = {"ready_timeout_s": 90.0, "stop_timeout_s": 10.0, **overrides}
    return ServerSpec("sentiment", model_dir, free_port(), free_port(), **settings)


def test_run_ready_metrics_stop_remove(demo_model_dir: Path, tmp_path: Path) -> None:
    client = FakeClient(tmp_path)
    spec = spec_for(demo_model_dir)
    backend = DockerBackend(spec, image="tensorflow/serving:2.19.0", client=client)
    workdir = tmp_path / "trial"
    params = BatchingParameters(max_batch_size=4, batch_timeout_micros=500)
    try:
        backend.start(params, {"tensorflow_inter_op_parallelism": "1"}, workdir)
        assert backend.is_running() and backend.pids == []
        scrape(backend.metrics_url, model_name="sentiment")
        meter = backend.cpu_meter()
        assert meter is not None and meter.percent() > 0  # from the stats API, not pids
    finally:
        backend.stop()
    expected = container_spec(
        spec,
        image="tensorflow/serving:2.19.0",
        batching_file=workdir / "batching_parameters.txt",
        monitoring_file=workdir / "monitoring_config.txt",
        server_flags={"tensorflow_inter_op_parallelism": "1"},
        labels=container_labels("trial"),
    )
    name = expected["name"]
    assert client.calls == [
        ("get", name),
        ("images.get", "tensorflow/serving:2.19.0"),
        ("run", expected),
        ("stop", name, 10),
        ("remove", name, True),
    ]
    assert expected["init"] is True  # SIGTERM reaches the server (no 10 s stop timeout)
    assert expected["labels"][LABEL] == "model-server"
    assert expected["labels"][TRIAL_LABEL] == "trial"
    assert backend.last_stop is not None and backend.last_stop[1] != 137
    assert all(v["mode"] == "ro" for v in expected["volumes"].values())
    assert {host for host, _ in expected["ports"].values()} == {"127.0.0.1"}
    assert client.containers_made[0].proc.poll() is not None
    assert "sentiment" in (workdir / "server.log").read_text()
    assert not backend.is_running()
    assert not port_in_use("127.0.0.1", spec.grpc_port)
    backend.stop()
    assert client.calls[-1] == ("remove", name, True)  # idempotent: nothing more


def test_exit_before_ready_saves_log_and_removes(tmp_path: Path) -> None:
    client = FakeClient(tmp_path, mode="exit")
    client.images_present.clear()
    spec = spec_for(tmp_path, ready_timeout_s=10.0)
    client.stale = FakeContainer(FakeClient(tmp_path, mode="exit"), {"name": "stale"}, tmp_path)
    backend = DockerBackend(spec, client=client)
    with pytest.raises(ServerExitedBeforeReady) as caught:
        backend.start(None, {}, tmp_path / "trial")
    err = caught.value
    assert err.exit_code == 1 and "container exited with code 1" in str(err)
    assert "the container was told to fail" in str(err) and err.log_tail
    container_log = client.containers_made[0].log_file
    assert (tmp_path / "trial" / "server.log").read_bytes() == container_log.read_bytes()
    kinds = [call[0] for call in client.calls]
    assert kinds == ["get", "images.get", "images.pull", "run", "stop", "remove"]
    assert client.stale.removed  # a container left by an earlier run is removed first
    assert client.containers_made[0].removed and not backend.is_running()


def test_published_port_taken_is_a_port_conflict(tmp_path: Path) -> None:
    backend = DockerBackend(spec_for(tmp_path), client=FakeClient(tmp_path, mode="port_taken"))
    with pytest.raises(PortConflictError, match="port is already allocated"):
        backend.start(None, {}, tmp_path / "trial")


def test_auto_falls_back_to_embedded_without_an_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no tensorflow_model_server here
    backend, why = create_backend("auto", spec_for(tmp_path))
    assert isinstance(backend, EmbeddedBackend)
    assert why == (
        "auto picked the embedded backend: no tensorflow_model_server on PATH and no "
        "reachable Docker engine, so it runs python -m model_server."
    )
    with pytest.raises(BackendUnavailableError, match="no Docker engine answered"):
        create_backend("docker", spec_for(tmp_path))


def test_auto_picks_docker_when_an_engine_answers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    client = FakeClient(tmp_path)
    backend, why = create_backend(
        "auto", spec_for(tmp_path), docker_image="img:1", docker_client_factory=lambda: client
    )
    # An engine without the image: no pull of gigabytes behind the user's back.
    assert isinstance(backend, EmbeddedBackend)
    assert "the Docker engine has no img:1 image" in why
    assert ("images.pull", "img:1") not in client.calls
    client.images_present.add("img:1")
    backend, why = create_backend(
        "auto", spec_for(tmp_path), docker_image="img:1", docker_client_factory=lambda: client
    )
    assert isinstance(backend, DockerBackend) and backend.client is client
    assert why == (
        "auto picked the docker backend: no tensorflow_model_server on PATH, but a Docker "
        "engine answered and has img:1, so it runs that image."
    )
    with pytest.raises(ServerConfigError, match="unknown server backend 'podman'"):
        create_backend("podman", spec_for(tmp_path))


def leftover(client: FakeClient, tmp_path: Path, labels: dict) -> FakeContainer:
    container = FakeContainer(
        FakeClient(tmp_path, mode="exit"), {"name": f"c{len(client.listed)}", "labels": labels},
        tmp_path,
    )  # fmt: skip
    client.listed.append(container)
    return container


def test_prepare_removes_only_containers_whose_tuner_is_gone(tmp_path: Path) -> None:
    study = (tmp_path / "runs" / "s").resolve()
    dead = f"999999:1.000:{study}"  # no process has this pid and start time
    host = socket.gethostname()
    client = FakeClient(tmp_path)
    with marking_children(study):
        mine = container_labels("trial-0001")  # this (live) tuner's own container
    assert mine[OWNER_LABEL].endswith(str(study)) and mine[STUDY_LABEL] == "s"
    base = {LABEL: "model-server", WORKDIR_LABEL: str(study), HOST_LABEL: host}
    orphan = leftover(client, tmp_path, {**base, OWNER_LABEL: dead, TRIAL_LABEL: "trial-0003"})
    live = leftover(client, tmp_path, mine)
    elsewhere = leftover(client, tmp_path, {**base, OWNER_LABEL: dead, HOST_LABEL: "other"})
    backend = DockerBackend(spec_for(tmp_path), client=client)
    lines = backend.prepare(study)
    assert lines == [
        "removed container c0 (trial trial-0003, tuner pid 999999), left by a tuner of this "
        "study that was killed"
    ]
    assert orphan.removed and not live.removed and not elsewhere.removed
    assert client.calls[0][0] == "list"  # before anything else (no port check yet)
    assert backend.prepare(study) == []


def test_image_that_cannot_be_pulled_is_image_unavailable(tmp_path: Path) -> None:
    client = FakeClient(tmp_path, mode="pull_refused")
    backend = DockerBackend(spec_for(tmp_path), image="tensorflow/serving:9.9", client=client)
    with pytest.raises(ImageUnavailableError) as caught:
        backend.prepare(tmp_path)
    assert caught.value.reason == "image_unavailable"
    message = str(caught.value)
    assert message.startswith("the image tensorflow/serving:9.9 is not on the Docker engine")
    assert "pull access denied" in message and "server.docker_image" in message
    assert "\n" not in message


def test_engine_gone_is_backend_unavailable_and_stop_never_raises(tmp_path: Path) -> None:
    client = FakeClient(tmp_path, mode="engine_gone")
    backend = DockerBackend(spec_for(tmp_path), client=client)
    with pytest.raises(BackendUnavailableError) as caught:
        backend.prepare(tmp_path)
    assert caught.value.reason == "backend_unavailable"
    assert "stopped answering" in str(caught.value) and "resume the study" in str(caught.value)
    backend.stop()  # nothing started: nothing to do, and no error

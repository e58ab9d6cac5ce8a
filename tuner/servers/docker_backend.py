"""The docker backend: the `tensorflow/serving` image (or the model-server target of our
Dockerfile, the same contract) through the Docker SDK, on Docker or podman's Docker API.

The model directory and the trial's config files are mounted read-only and the ports are
published on loopback only. Stopping is quick: `tensorflow_model_server` installs no SIGTERM
handler (only SIGPIPE is ignored, tensorflow_serving/util/net_http/server/internal/
evhttp_server.cc), and as a container's PID 1 the kernel would drop SIGTERM, so `docker stop`
would wait its whole timeout and then SIGKILL. The container therefore runs under the engine's
init (`init=True`: docker-init or catatonit), which forwards SIGTERM to the server, which then
dies at once. Its log is saved as the trial's server.log before the container is removed
(`auto_remove` is off so a container that dies at start-up keeps its log until we read it).
Every container is labelled with its study, its tuner and its trial (docker_engine.py).
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from docker.errors import APIError, DockerException, NotFound

from model_server.batching_parameters import BatchingParameters
from tuner.process import log_tail
from tuner.servers.base import (
    BackendUnavailableError,
    ModelServerBackend,
    PortConflictError,
    ServerSpec,
)
from tuner.servers.container_cpu import ContainerCpu
from tuner.servers.defaults import DEFAULT_BINARY, DEFAULT_IMAGE
from tuner.servers.docker_engine import (
    ENGINE_ERRORS,
    LABEL,
    ROLE,
    container_labels,
    docker_client,
    engine_errors,
    engine_gone,
    ensure_image,
    publish_error,
    remove_leftover_containers,
)
from tuner.servers.flags import (
    BATCHING_FILE,
    MONITORING_FILE,
    binary_trap_flags,
    model_server_flags,
    write_batching_file,
    write_monitoring_config,
)
from tuner.servers.ports import check_ports_free
from tuner.servers.process import LOG_FILE

__all__ = ["DEFAULT_IMAGE", "DockerBackend", "container_spec", "docker_client"]

log = logging.getLogger(__name__)

CONTAINER_GRPC_PORT = 8500
CONTAINER_REST_PORT = 8501
CONTAINER_CONFIG_DIR = "/etc/tuner"
SIGKILL_EXIT = 137  # 128 + 9: what a container killed by the engine's stop timeout exits with


def container_name(spec: ServerSpec) -> str:
    """Stable per study (its ports are stored with it), so a leftover of a crash is found."""
    return f"tuner-model-server-{spec.grpc_port}"


def container_spec(
    spec: ServerSpec,
    *,
    image: str,
    batching_file: Path | None,
    monitoring_file: Path,
    server_flags: Mapping[str, str],
    labels: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Keyword arguments for `client.containers.run(...)` (pure: tests check it as is)."""
    server_flags = spec.with_cpu_flags(server_flags)
    model_dir = f"/models/{spec.model_name}"
    container_batching = f"{CONTAINER_CONFIG_DIR}/{BATCHING_FILE}"
    container_monitoring = f"{CONTAINER_CONFIG_DIR}/{MONITORING_FILE}"
    volumes = {str(spec.model_base_path): {"bind": model_dir, "mode": "ro"}}
    if batching_file is not None:
        volumes[str(batching_file)] = {"bind": container_batching, "mode": "ro"}
    volumes[str(monitoring_file)] = {"bind": container_monitoring, "mode": "ro"}
    command = model_server_flags(
        grpc_port=CONTAINER_GRPC_PORT,
        rest_port=CONTAINER_REST_PORT,
        model_name=spec.model_name,
        model_base_path=model_dir,
        batching_file=container_batching if batching_file is not None else None,
        server_flags=server_flags,
        extra_flags=spec.extra_flags,
        backend_flags=binary_trap_flags(container_monitoring, server_flags, spec.extra_flags),
    )
    return {
        "image": image,
        # The image's entrypoint script adds its own --port/--model_name flags; bypass it.
        "entrypoint": [DEFAULT_BINARY],
        "command": command,
        "name": container_name(spec),
        "detach": True,
        "auto_remove": False,
        # The engine's init as PID 1 forwards SIGTERM (see the module docstring).
        "init": True,
        "ports": {
            f"{CONTAINER_GRPC_PORT}/tcp": (spec.host, spec.grpc_port),
            f"{CONTAINER_REST_PORT}/tcp": (spec.host, spec.rest_port),
        },
        "volumes": volumes,
        "labels": {LABEL: ROLE, **(labels or {})},
        **(spec.cpus.docker_kwargs() if spec.cpus is not None else {}),
    }


class _ContainerProcess:
    """Lets the readiness poll notice a container that exited (it only needs poll())."""

    def __init__(self, container) -> None:
        self.container = container
        self.returncode: int | None = None

    def poll(self) -> int | None:
        try:
            self.container.reload()
        except NotFound:
            self.returncode = -1
            return self.returncode
        except ENGINE_ERRORS as exc:
            raise engine_gone(exc) from None
        if self.container.status in ("exited", "dead"):
            self.returncode = self.container.attrs.get("State", {}).get("ExitCode")
            return self.returncode
        return None


class DockerBackend(ModelServerBackend):
    name = "docker"

    def __init__(self, spec: ServerSpec, *, image: str = DEFAULT_IMAGE, client=None) -> None:
        super().__init__(spec)
        self.image = image
        self.client = client if client is not None else docker_client()
        if self.client is None:
            raise BackendUnavailableError(
                "no Docker engine answered (is the daemon running and DOCKER_HOST right?); "
                "start Docker or use another server backend"
            )
        self._container = None
        self._log_path: Path | None = None
        # (seconds, exit code) of the last stop: exit 137 would mean the engine had to kill.
        self.last_stop: tuple[float, int | None] | None = None

    def prepare(self, workdir: Path) -> list[str]:
        """Before any port check: remove what a killed tuner of this study left, and make
        sure the image is there, so a missing image stops the study before its first trial."""
        removed = remove_leftover_containers(self.client, workdir)
        ensure_image(self.client, self.image)
        return [
            f"removed container {r}, left by a tuner of this study that was killed" for r in removed
        ]

    def start(
        self,
        batching: BatchingParameters | None,
        server_flags: Mapping[str, str],
        workdir: Path,
    ) -> None:
        self.stop()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        run_kwargs = container_spec(
            self.spec,
            image=self.image,
            batching_file=write_batching_file(workdir, batching),
            monitoring_file=write_monitoring_config(workdir),
            server_flags=server_flags,
            labels=container_labels(workdir.name),
        )
        check_ports_free(self.spec, self.spec.host)
        self._log_path = workdir / LOG_FILE
        self._remove_stale(run_kwargs["name"])
        ensure_image(self.client, self.image)
        log.info(
            "event=server_start backend=docker image=%s name=%s", self.image, run_kwargs["name"]
        )
        self._container = self._run(run_kwargs)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        log.info("event=server_ready backend=docker container=%s", self._container.name)

    def _run(self, run_kwargs: dict[str, Any]):
        with engine_errors("start the container"):
            try:
                return self.client.containers.run(**run_kwargs)
            except APIError as exc:
                if publish_error(exc):
                    raise PortConflictError(
                        f"Docker could not publish the model server's ports ({exc}); free "
                        "server.grpc_port / server.rest_port or choose others",
                        port=self.spec.grpc_port,
                    ) from None
                raise

    def _remove_stale(self, name: str) -> None:
        """A container with this study's name that holds no port (the check passed): an
        exited leftover, or one from a tuner on another host; it only blocks the name."""
        with engine_errors(f"remove the stale container {name}"):
            try:
                stale = self.client.containers.get(name)
            except NotFound:
                return
            log.warning("event=docker_remove_stale name=%s", name)
            stale.remove(force=True)

    def _wait_ready(self) -> None:
        self._wait_available(
            _ContainerProcess(self._container),
            subject="model server container",
            stopped="container was removed",
        )

    def _save_logs(self) -> None:
        if self._container is None or self._log_path is None:
            return
        with contextlib.suppress(DockerException, *ENGINE_ERRORS):
            self._log_path.write_bytes(self._container.logs())

    def stop(self) -> None:
        """SIGTERM through the init (the server dies at once), the log saved, then removed.
        Never raises: an engine that is gone leaves nothing of ours to stop."""
        container = self._container
        if container is None:
            return
        began = time.monotonic()
        exit_code = None
        try:
            container.stop(timeout=max(1, round(self.spec.stop_timeout_s)))
            container.reload()
            exit_code = container.attrs.get("State", {}).get("ExitCode")
        except NotFound:
            pass
        except (DockerException, *ENGINE_ERRORS) as exc:
            log.warning("event=docker_stop_failed name=%s error=%r", container.name, str(exc))
        stopped_s = time.monotonic() - began
        self._save_logs()
        with contextlib.suppress(NotFound, DockerException, *ENGINE_ERRORS):
            container.remove(force=True)
        self.last_stop = (stopped_s, exit_code)
        log.info(
            "event=server_stop backend=docker container=%s stop_s=%.3f exit_code=%s%s",
            container.name,
            stopped_s,
            exit_code,
            " killed_by_engine=1" if exit_code == SIGKILL_EXIT else "",
        )
        self._container = None

    def is_running(self) -> bool:
        if self._container is None:
            return False
        return _ContainerProcess(self._container).poll() is None

    def cpu_meter(self) -> ContainerCpu | None:
        return ContainerCpu(self._container) if self._container is not None else None

    @property
    def pids(self) -> list[int]:
        return []

    @property
    def log_path(self) -> Path | None:
        """The trial's server.log, refreshed from the running container on access."""
        self._save_logs()
        return self._log_path

    def log_tail(self, lines: int = 30) -> str:
        self._save_logs()
        return log_tail(self._log_path, lines)

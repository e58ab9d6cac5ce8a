"""Model-server backends behind one interface, and `auto` resolution between them."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from tuner.servers.base import (
    BackendUnavailableError,
    ModelServerBackend,
    ModelServerError,
    PortConflictError,
    ServerConfigError,
    ServerExitedBeforeReady,
    ServerNeverReady,
    ServerSpec,
)
from tuner.servers.binary import BinaryBackend, resolve_binary
from tuner.servers.defaults import BACKENDS, DEFAULT_BINARY, DEFAULT_IMAGE
from tuner.servers.embedded import EmbeddedBackend

# The Docker SDK and TensorFlow are extras: the base install runs the binary backend alone.
NO_DOCKER_SDK = (
    'server.backend = "docker" needs the Docker SDK, which the base install leaves out: '
    "pip install 'tfserving-batching-tuner[docker]'"
)
NO_TENSORFLOW = (
    "the embedded model server runs the model with TensorFlow, which the base install leaves "
    "out: pip install 'tfserving-batching-tuner[embedded]' (about 570 MB), or use "
    'server.backend = "binary" or "docker"'
)


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def docker_client() -> Any:
    """A client of the engine at DOCKER_HOST or the default socket, None when none answers or
    the Docker SDK is not installed (so `auto` moves on to the embedded server)."""
    if not installed("docker"):
        return None
    from tuner.servers.docker_backend import docker_client as client

    return client()


def __getattr__(name: str) -> Any:
    """`DockerBackend` on first use, so importing the servers does not need the Docker SDK."""
    if name == "DockerBackend":
        from tuner.servers.docker_backend import DockerBackend

        return DockerBackend
    raise AttributeError(name)


__all__ = [
    "BACKENDS",
    "BackendUnavailableError",
    "BinaryBackend",
    "DockerBackend",
    "EmbeddedBackend",
    "ModelServerBackend",
    "ModelServerError",
    "PortConflictError",
    "ServerConfigError",
    "ServerExitedBeforeReady",
    "ServerNeverReady",
    "ServerSpec",
    "create_backend",
]


def create_backend(
    kind: str,
    spec: ServerSpec,
    *,
    binary_path: str = DEFAULT_BINARY,
    docker_image: str = DEFAULT_IMAGE,
    docker_client_factory: Callable[[], Any] = docker_client,
) -> tuple[ModelServerBackend, str]:
    """The backend for `kind` and one sentence saying why it was picked.

    `auto`: a tensorflow_model_server on PATH, else a reachable Docker engine that has the
    image, else the embedded server. An explicit kind that cannot run raises
    BackendUnavailableError.
    `docker_client_factory` returns a Docker client or None (tests pass a fake).
    """
    if kind not in BACKENDS:
        raise ServerConfigError(
            f"unknown server backend {kind!r}; choose one of {', '.join(BACKENDS)}"
        )
    if kind == "embedded":
        _require("tensorflow", NO_TENSORFLOW)
        return EmbeddedBackend(spec), "the embedded model server was configured (server.backend)."
    if kind == "binary":
        backend = BinaryBackend(spec, binary_path)
        return backend, f"{backend.binary} was configured (server.backend = binary)."
    if kind == "docker":
        _require("docker", NO_DOCKER_SDK)
        from tuner.servers.docker_backend import DockerBackend

        client = docker_client_factory()
        backend = DockerBackend(spec, image=docker_image, client=client)
        return backend, f"the Docker image {docker_image} was configured (server.backend)."
    binary = resolve_binary(binary_path)
    if binary is not None:
        return BinaryBackend(spec, binary_path), (
            f"auto picked the binary backend: {binary_path} was found at {binary}."
        )
    client = docker_client_factory()
    if client is not None:
        from tuner.servers.docker_backend import DockerBackend
        from tuner.servers.docker_engine import image_present
    if client is not None and image_present(client, docker_image):
        return DockerBackend(spec, image=docker_image, client=client), (
            f"auto picked the docker backend: no {binary_path} on PATH, but a Docker engine "
            f"answered and has {docker_image}, so it runs that image."
        )
    _require("tensorflow", NO_TENSORFLOW)
    if client is not None:
        # Pulling gigabytes (or failing to, without Docker Hub) is not what `auto` should do.
        return EmbeddedBackend(spec), (
            f"auto picked the embedded backend: no {binary_path} on PATH, and the Docker engine "
            f"has no {docker_image} image (pull or build it, or set server.backend = "
            '"docker", to use it), so it runs python -m model_server.'
        )
    return EmbeddedBackend(spec), (
        f"auto picked the embedded backend: no {binary_path} on PATH and no reachable Docker "
        "engine, so it runs python -m model_server."
    )


def _require(module: str, message: str) -> None:
    if not installed(module):
        raise BackendUnavailableError(message)

"""Helpers for the real-engine suite: the engine, the images and waiting on containers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable

import docker
import httpx
from docker.errors import DockerException, NotFound

IMAGES = {
    "service": "tuner-service",
    "model-server": "tuner-model-server",
    "tuner": "tuner-tuner",
}
READY_TIMEOUT_S = 180.0  # TensorFlow's import and the model load, on a loaded 2-core machine


def engine_client():
    try:
        client = docker.from_env(timeout=60)
        client.ping()
    except DockerException:
        return None
    return client


class Containers:
    def __init__(self, client) -> None:
        self.client = client
        self.made: list = []

    def run(self, image: str, **kwargs):
        container = self.client.containers.run(image, detach=True, **kwargs)
        self.made.append(container)
        return container

    def remove_all(self) -> None:
        for container in reversed(self.made):
            with contextlib.suppress(NotFound):
                container.remove(force=True)


def wait_for(check: Callable[[], bool], what: str, container=None) -> None:
    """Poll `check` until true; fail naming `what` (with the container's log) at the bound.
    A readiness wait, not a timing assertion: the bound only keeps a broken run finite."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if check():
                return
        if container is not None:
            container.reload()
            if container.status in ("exited", "dead"):
                break
        time.sleep(0.5)
    log = container.logs(tail=30).decode(errors="replace") if container is not None else ""
    raise AssertionError(f"{what} never happened\n{log}")


def http_ok(url: str) -> Callable[[], bool]:
    return lambda: httpx.get(url, timeout=2.0).status_code == 200


def model_available(rest_url: str, model: str) -> Callable[[], bool]:
    def check() -> bool:
        response = httpx.get(f"{rest_url}/v1/models/{model}", timeout=2.0)
        states = [v["state"] for v in response.json().get("model_version_status", [])]
        return response.status_code == 200 and "AVAILABLE" in states

    return check

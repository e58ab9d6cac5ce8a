"""Talking to a Docker-API engine (Docker, or podman's compatible service): the client, the
image, the labels that tie a container to its study and tuner, and what a failure means.

Every engine error becomes one sentence and a `fail_reason`: an engine that stopped answering
is `backend_unavailable` (the study can resume once it is back), an image that is neither
present nor pullable is `image_unavailable` (a setting to fix), anything else the engine
refuses is `model_server_error` with the engine's own words.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

import docker
import requests
from docker.errors import APIError, DockerException, ImageNotFound, NotFound

from tuner.coordination.leftovers import current_owner, owner_gone, owner_workdir
from tuner.servers.base import BackendUnavailableError, ModelServerError

log = logging.getLogger(__name__)

LABEL = "io.github.tfserving-batching-tuner"
STUDY_LABEL = f"{LABEL}.study"
WORKDIR_LABEL = f"{LABEL}.workdir"  # the study's identity on this host, as for processes
OWNER_LABEL = f"{LABEL}.owner"  # the tuner's marker: pid, start time and study workdir
HOST_LABEL = f"{LABEL}.host"
TRIAL_LABEL = f"{LABEL}.trial"
ROLE = "model-server"

# What the SDK raises when the engine itself is unreachable (socket gone, daemon stopped).
ENGINE_ERRORS = (requests.exceptions.ConnectionError, requests.exceptions.Timeout)


class ImageUnavailableError(ModelServerError):
    reason = "image_unavailable"


def engine_address() -> str:
    return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")


def docker_client(timeout_s: float = 3.0):
    """A client for the configured Docker engine if it answers a ping, else None."""
    try:
        client = docker.from_env(timeout=max(1, round(timeout_s)))
        client.ping()
    except Exception:
        return None
    return client


def engine_gone(exc: BaseException) -> BackendUnavailableError:
    return BackendUnavailableError(
        f"the Docker engine at {engine_address()} stopped answering ({_short(exc)}); start it "
        "again (or fix DOCKER_HOST) and run the same command to resume the study"
    )


@contextlib.contextmanager
def engine_errors(action: str) -> Iterator[None]:
    """Turn what the SDK raises while doing `action` into the backend's errors."""
    try:
        yield
    except ModelServerError:
        raise
    except ENGINE_ERRORS as exc:
        raise engine_gone(exc) from None
    except (DockerException, requests.exceptions.RequestException) as exc:
        if _is_connection_failure(exc):
            raise engine_gone(exc) from None
        raise ModelServerError(f"Docker could not {action}: {_short(exc)}") from None


def _is_connection_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    return any(
        s in text for s in ("connection refused", "connection aborted", "no such file or direct")
    )


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 240 else text[:237] + "..."


def image_present(client, image: str) -> bool:
    try:
        client.images.get(image)
    except (DockerException, requests.exceptions.RequestException):
        return False
    return True


def ensure_image(client, image: str) -> None:
    """The image on the engine, pulled when missing; ImageUnavailableError when it cannot be."""
    with engine_errors(f"look up the image {image}"):
        try:
            client.images.get(image)
            return
        except ImageNotFound:
            pass
    log.info("event=docker_pull image=%s", image)
    try:
        client.images.pull(image)
    except ENGINE_ERRORS as exc:
        raise engine_gone(exc) from None
    except (DockerException, requests.exceptions.RequestException) as exc:
        raise ImageUnavailableError(
            f"the image {image} is not on the Docker engine and pulling it failed "
            f"({_short(exc)}); pull it where its registry is reachable, or build the embedded "
            "stand-in (`docker build --target model-server -t tuner-model-server .`) and set "
            'server.docker_image = "tuner-model-server"'
        ) from None


def container_labels(trial: str) -> dict[str, str]:
    """Labels for a trial's container: its role, trial, host and, inside a study run, the
    study and the tuner that owns it (so the next run can tell a leftover from a live one)."""
    labels = {LABEL: ROLE, TRIAL_LABEL: trial, HOST_LABEL: socket.gethostname()}
    owner = current_owner()
    workdir = owner_workdir(owner) if owner else None
    if owner and workdir:
        labels[OWNER_LABEL] = owner
        labels[WORKDIR_LABEL] = workdir
        labels[STUDY_LABEL] = Path(workdir).name
    return labels


def remove_leftover_containers(client, workdir: Path) -> list[str]:
    """Remove this study's containers whose tuner is gone (on this host); a description of
    each. Containers of a live tuner, or of another host's tuner, are left alone."""
    wanted = str(Path(workdir).resolve())
    with engine_errors("list containers"):
        found = client.containers.list(
            all=True, filters={"label": [f"{LABEL}={ROLE}", f"{WORKDIR_LABEL}={wanted}"]}
        )
    removed = []
    for container in found:
        labels = container.labels or {}
        owner = labels.get(OWNER_LABEL, "")
        if labels.get(WORKDIR_LABEL) != wanted or labels.get(HOST_LABEL) != socket.gethostname():
            continue
        if not owner_gone(owner):
            continue
        with (
            engine_errors(f"remove the leftover container {container.name}"),
            contextlib.suppress(NotFound),
        ):
            container.remove(force=True)
        log.warning(
            "event=docker_remove_leftover name=%s trial=%s owner=%s",
            container.name,
            labels.get(TRIAL_LABEL),
            owner,
        )
        removed.append(
            f"{container.name} (trial {labels.get(TRIAL_LABEL, '?')}, "
            f"tuner pid {owner.partition(':')[0]})"
        )
    return removed


def publish_error(exc: APIError) -> bool:
    text = str(exc)
    return "port is already allocated" in text or "address already in use" in text

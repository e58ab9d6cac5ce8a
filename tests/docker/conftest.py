"""The images and the docker backend against a real Docker-API engine: `make test-docker`.

`make test-docker` provides the engine (podman's Docker API when none answers) and builds the
Dockerfile's targets as tuner-service, tuner-model-server and tuner-tuner, then runs this
suite with TUNER_TEST_DOCKER=1. `make test` needs no engine, so without that variable these
modules are not collected at all; with it, an engine or image that is missing is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.docker.engine import IMAGES, Containers, engine_client

collect_ignore_glob = [] if os.environ.get("TUNER_TEST_DOCKER") == "1" else ["test_*.py"]


@pytest.fixture(scope="session")
def engine():
    client = engine_client()
    if client is None:
        pytest.fail(
            f"no Docker engine answers at {os.environ.get('DOCKER_HOST', 'the default socket')}; "
            "run the suite with `make test-docker`, which provides one"
        )
    for image in IMAGES.values():
        try:
            client.images.get(image)
        except Exception:
            pytest.fail(f"the image {image} is not on the engine; `make test-docker` builds it")
    return client


@pytest.fixture
def containers(engine) -> Iterator[Containers]:
    """Containers a test runs directly; all removed (force) when it ends."""
    made = Containers(engine)
    try:
        yield made
    finally:
        made.remove_all()

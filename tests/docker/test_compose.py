"""compose.yaml with a real compose implementation on the engine: the serving stack (with the
model-server override, as on a machine without Docker Hub), and the tuner measuring through
the stack's `tuning-service` while its docker backend runs the model server."""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import optuna
import pytest

from tests.docker.engine import IMAGES, http_ok, model_available, wait_for
from tests.docker.test_study import study_config
from tuner.process import free_port
from tuner.study.run import load_existing_study, optimize

REPO = Path(__file__).resolve().parents[2]
FILES = ["-f", str(REPO / "compose.yaml"), "-f", str(REPO / "compose.embedded.yaml")]


def compose_command() -> list[str]:
    """`docker compose` (v2) where the plugin exists, else docker-compose (v1, Debian's)."""
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("neither `docker compose` nor docker-compose is installed; `make test-docker` "
                "installs Debian's docker-compose")  # fmt: skip


class Stack:
    def __init__(self, demo_model_dir: Path) -> None:
        self.project = f"tunertest{uuid.uuid4().hex[:8]}"
        self.ports = {"GRPC_PORT": free_port(), "REST_PORT": free_port()}
        self.ports["SERVICE_PORT"] = free_port()
        self.env = {
            **os.environ,
            **{k: str(v) for k, v in self.ports.items()},
            "MODEL_DIR": str(demo_model_dir),
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess:
        command = [*compose_command(), *FILES, "-p", self.project, *args]
        done = subprocess.run(command, cwd=REPO, env=self.env, capture_output=True, text=True)
        assert done.returncode == 0, f"{' '.join(args)}: {done.stdout}\n{done.stderr}"
        return done


@pytest.fixture
def stack(engine, demo_model_dir: Path) -> Iterator[Stack]:
    made = Stack(demo_model_dir)
    try:
        yield made
    finally:
        made("--profile", "tuning", "down", "--timeout", "10")


def test_compose_up_serves_predictions_with_batching(stack: Stack, engine) -> None:
    stack("up", "-d", "--no-build")
    rest = f"http://127.0.0.1:{stack.ports['REST_PORT']}"
    service = f"http://127.0.0.1:{stack.ports['SERVICE_PORT']}"
    wait_for(model_available(rest, "sentiment"), "the compose model server's AVAILABLE")
    wait_for(http_ok(f"{service}/readyz"), "the compose service's /readyz")
    response = httpx.post(f"{service}/predict", json={"text": "a really good service"})
    assert response.status_code == 200 and response.json()["prediction"] == "Positive"
    metrics = httpx.get(f"{rest}/monitoring/prometheus/metrics").text
    assert ":tensorflow:serving:batching_session:processed_batch_size" in metrics
    names = {c.name for c in engine.containers.list(filters={"label": [
        f"com.docker.compose.project={stack.project}"]})}  # fmt: skip
    assert len(names) == 2 and all(stack.project in n for n in names)


def test_the_tuner_measures_through_the_compose_service(
    stack: Stack, tmp_path: Path, demo_model_dir: Path
) -> None:
    stack("--profile", "tuning", "up", "-d", "--no-build", "tuning-service")
    url = f"http://127.0.0.1:{stack.ports['SERVICE_PORT']}"
    config = study_config(
        tmp_path,
        demo_model_dir,
        study={"name": "via-compose", "n_trials": 1},
        service={"url": url},
        server={"grpc_port": stack.ports["GRPC_PORT"], "rest_port": stack.ports["REST_PORT"]},
    )
    lines: list[str] = []
    optimize(config, say=lines.append)
    finished = load_existing_study(config).get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert len(finished) == 1, lines
    trial = finished[0]
    assert trial.user_attrs["backend"] == "docker" and trial.user_attrs["requests"] > 0
    assert f"prediction service: {url}" in lines
    assert IMAGES["model-server"] in "\n".join(lines)

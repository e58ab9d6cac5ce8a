"""The images as a user runs them: the model-server image with the tensorflow/serving image's
contract (its entrypoint, MODEL_NAME, /models, ports 8500/8501, extra flags appended), the
service image in front of it answering /predict, its HEALTHCHECK command, and non-root users."""

from __future__ import annotations

from pathlib import Path

import httpx
import optuna

from tests.docker.engine import IMAGES, READY_TIMEOUT_S, http_ok, model_available, wait_for
from tuner.process import free_port

REPO = Path(__file__).resolve().parents[2]
TUNER_UID = "10001"


def image_config(engine, image: str) -> dict:
    return engine.images.get(image).attrs["Config"]


def test_model_server_image_has_the_tensorflow_serving_contract(engine) -> None:
    config = image_config(engine, IMAGES["model-server"])
    assert config["Entrypoint"] == ["/usr/bin/tf_serving_entrypoint.sh"]
    assert {"8500/tcp", "8501/tcp"} <= set(config["ExposedPorts"])
    assert {"MODEL_BASE_PATH=/models", "MODEL_NAME=model"} <= set(config["Env"])
    for name in ("service", "model-server", "tuner"):
        assert image_config(engine, IMAGES[name])["User"] == "tuner", name


def test_service_in_front_of_the_model_server_image(
    engine, containers, demo_model_dir: Path
) -> None:
    grpc_port, rest_port, service_port = free_port(), free_port(), free_port()
    model_mount = {str(demo_model_dir): {"bind": "/models/sentiment", "mode": "ro"}}
    batching = REPO / "container" / "batching_parameters.txt"
    # As in compose.yaml: the image's own entrypoint, the model named by MODEL_NAME, batching
    # flags as container arguments. The service shares its network namespace (127.0.0.1).
    server = containers.run(
        IMAGES["model-server"],
        command=["--enable_batching", "--batching_parameters_file=/config/batching.txt"],
        environment={"MODEL_NAME": "sentiment"},
        volumes={**model_mount, str(batching): {"bind": "/config/batching.txt", "mode": "ro"}},
        ports={
            "8500/tcp": ("127.0.0.1", grpc_port),
            "8501/tcp": ("127.0.0.1", rest_port),
            "8080/tcp": ("127.0.0.1", service_port),
        },
        init=True,
    )
    rest = f"http://127.0.0.1:{rest_port}"
    wait_for(model_available(rest, "sentiment"), "the model server's AVAILABLE", server)
    service = containers.run(
        IMAGES["service"],
        environment={"SERVICE_MODEL_SERVER": "127.0.0.1:8500"},
        volumes=model_mount,
        network_mode=f"container:{server.id}",
        init=True,
    )
    url = f"http://127.0.0.1:{service_port}"
    wait_for(http_ok(f"{url}/readyz"), "the service's /readyz", service)

    response = httpx.post(
        f"{url}/predict", json={"texts": ["I had an excellent service", "a really bad service"]}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert [p["prediction"] for p in body["predictions"]] == ["Positive", "Negative"]

    # The image's HEALTHCHECK command, run as the engine would run it.
    health = service.attrs["Config"].get("Healthcheck") or {}
    test = health.get("Test") or ["CMD", *_healthcheck_from_dockerfile()]
    assert test[0] == "CMD" and "/healthz" in test[-1]
    assert service.exec_run(test[1:]).exit_code == 0
    assert server.exec_run(["id", "-u"]).output.decode().strip() == TUNER_UID
    assert service.exec_run(["id", "-u"]).output.decode().strip() == TUNER_UID
    # The model server read the batching file it was given.
    assert b"batching=on max_batch_size=32" in server.logs()
    # Under an init, SIGTERM reaches them: the entrypoint's bash dies of it (143, as in
    # tensorflow/serving), which ends the container; the service exits on it (0 or 143).
    # Neither waits for the engine's SIGKILL after the timeout (137).
    exit_codes = []
    for container in (service, server):
        container.stop(timeout=10)
        container.reload()
        exit_codes.append(container.attrs["State"]["ExitCode"])
    assert exit_codes[0] in (0, 143) and exit_codes[1] == 143


def _healthcheck_from_dockerfile() -> list[str]:
    """podman's compat API leaves Healthcheck out of a container's Config; the Dockerfile's
    HEALTHCHECK line is what the image carries (podman inspect shows it)."""
    import json

    for line in (REPO / "Dockerfile").read_text().splitlines():
        if line.strip().startswith("CMD [") and "/healthz" in line:
            return json.loads(line.strip()[len("CMD ") :])
    raise AssertionError("the Dockerfile has no HEALTHCHECK CMD on /healthz")


def test_tuner_image_runs_the_cli_and_the_dashboard(engine, containers) -> None:
    tuner = containers.run(IMAGES["tuner"], command=["--help"])
    assert tuner.wait(timeout=120)["StatusCode"] == 0
    assert "optimize" in tuner.logs().decode()
    dashboard = containers.run(
        IMAGES["tuner"], entrypoint=["optuna-dashboard"], command=["--version"]
    )
    assert dashboard.wait(timeout=120)["StatusCode"] == 0
    assert dashboard.logs().decode().strip()  # its version


def test_a_study_runs_inside_the_tuner_image(
    engine, containers, demo_model_dir: Path, tmp_path: Path
) -> None:
    """The tuner image on a mounted study directory: the embedded backend inside it, the
    database written where the user can read it."""
    study_dir = tmp_path / "study"
    study_dir.mkdir()
    study_dir.chmod(0o777)  # the image's user (uid 10001) writes the database and the runs
    (study_dir / "tuner.toml").write_text(
        """
[study]
name = "in-container"
storage = "sqlite:///tuning.db"
n_trials = 1
[server]
backend = "embedded"
model_base_path = "/models/sentiment"
[load]
users = 4
spawn_rate = 4.0
warmup_s = 1.0
measure_s = 3.0
[search]
space = "quick"
[confirm]
top_k = 0
[objective]
slo_ms = 2000.0
"""
    )
    tuner = containers.run(
        IMAGES["tuner"],
        command=["optimize", "--config", "tuner.toml"],
        volumes={
            str(study_dir): {"bind": "/work", "mode": "rw"},
            str(demo_model_dir): {"bind": "/models/sentiment", "mode": "ro"},
        },
    )
    status = tuner.wait(timeout=READY_TIMEOUT_S * 2)["StatusCode"]
    output = tuner.logs().decode(errors="replace")
    assert status == 0, output
    assert "model server: the embedded model server was configured" in output
    study = optuna.load_study(study_name="in-container", storage=f"sqlite:///{study_dir}/tuning.db")
    [trial] = study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
    assert trial.user_attrs["backend"] == "embedded" and trial.user_attrs["requests"] > 0

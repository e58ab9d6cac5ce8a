"""Studies with `server.backend = "docker"` on a real engine: trials measured with the
container's CPU, ports stored with the study, nothing left running; and a tuner killed with
SIGKILL whose container the next run removes (by label) before any port check."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from docker.errors import NotFound

from tests.docker.engine import IMAGES, READY_TIMEOUT_S
from tuner.config import TunerConfig, load_config
from tuner.process import free_port
from tuner.servers.docker_engine import LABEL, WORKDIR_LABEL
from tuner.servers.study_ports import PORTS_ATTR
from tuner.study.run import load_existing_study, optimize

REPO = Path(__file__).resolve().parents[2]


def study_config(tmp_path: Path, demo_model_dir: Path, **sections) -> TunerConfig:
    """A short study on the docker backend and the model-server image."""
    overrides = {
        "study": {"name": "docker", "storage": f"sqlite:///{tmp_path / 'tuning.db'}"},
        "server": {
            "backend": "docker",
            "docker_image": IMAGES["model-server"],
            "model_base_path": str(demo_model_dir),
            "ready_timeout_s": READY_TIMEOUT_S,
        },
        "load": {"users": 4, "spawn_rate": 4.0, "warmup_s": 1.0, "measure_s": 3.0},
        "search": {"space": "quick"},
        "confirm": {"top_k": 0},
        "objective": {"slo_ms": 2000.0},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    config = load_config(None, overrides)
    config.base_dir = tmp_path
    return config


def our_containers(engine, workdir: Path) -> list:
    return engine.containers.list(
        all=True,
        filters={"label": [f"{LABEL}=model-server", f"{WORKDIR_LABEL}={workdir.resolve()}"]},
    )


def test_a_short_study_on_the_docker_backend(engine, tmp_path: Path, demo_model_dir) -> None:
    config = study_config(tmp_path, demo_model_dir, study={"n_trials": 2})
    lines: list[str] = []
    optimize(config, say=lines.append)
    study = load_existing_study(config)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2, lines
    for trial in trials:
        assert trial.user_attrs["backend"] == "docker"
        assert trial.user_attrs["cpu_model_server_percent"] > 0  # the engine's stats API
        assert trial.user_attrs["requests"] > 0
        log = tmp_path / "runs" / "docker" / f"trial-{trial.number:04d}" / "server.log"
        assert "event=available" in log.read_text()
    assert "model server: the Docker image tuner-model-server was configured" in "\n".join(lines)
    ports = study.user_attrs[PORTS_ATTR]
    assert len(ports) == 1 and set(next(iter(ports.values()))) == {"grpc", "rest"}
    assert our_containers(engine, tmp_path / "runs" / "docker") == []


def test_the_next_run_removes_the_container_of_a_killed_tuner(
    engine, tmp_path: Path, demo_model_dir, child_tmpdir: Path
) -> None:
    grpc_port, rest_port = free_port(), free_port()  # fixed, as a user would configure them
    config_file = tmp_path / "tuner.toml"
    config_file.write_text(f"""
[study]
name = "killed"
storage = "sqlite:///{tmp_path / "tuning.db"}"
n_trials = 2
stale_after_s = 2
[server]
backend = "docker"
docker_image = "{IMAGES["model-server"]}"
model_base_path = "{demo_model_dir}"
ready_timeout_s = {READY_TIMEOUT_S}
grpc_port = {grpc_port}
rest_port = {rest_port}
[load]
users = 4
spawn_rate = 4.0
warmup_s = 1.0
measure_s = 60.0
[search]
space = "quick"
[confirm]
top_k = 0
[objective]
slo_ms = 2000.0
""")
    workdir = tmp_path / "runs" / "killed"
    tuner = subprocess.Popen(
        [sys.executable, "-m", "tuner", "optimize", "--config", str(config_file)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # A SIGKILLed tuner cannot remove its temporary files (its browser's profile).
        env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(child_tmpdir)},
    )
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not our_containers(engine, workdir) and time.monotonic() < deadline:
            assert tuner.poll() is None, "the tuner ended before it started a container"
            time.sleep(0.5)
        [leftover] = our_containers(engine, workdir)
        time.sleep(2)  # into the trial's load
    finally:
        tuner.send_signal(signal.SIGKILL)
        tuner.wait()
    leftover.reload()
    assert leftover.status == "running"  # nobody stopped it: the tuner died without a word

    time.sleep(2)  # the killed trial goes stale (stale_after_s = 2) and runs again
    config = study_config(
        tmp_path,
        demo_model_dir,
        study={"name": "killed", "n_trials": 2, "stale_after_s": 2},
        server={"grpc_port": grpc_port, "rest_port": rest_port},
    )
    lines: list[str] = []
    optimize(config, say=lines.append)
    removed = [line for line in lines if line.startswith("removed container")]
    assert removed == [
        f"removed container {leftover.name} (trial trial-0000, tuner pid {tuner.pid}), "
        "left by a tuner of this study that was killed"
    ]
    # Removed before the port check: the leftover held the configured ports, and the second
    # run's trials were measured on them (no port_conflict).
    states = [t.state for t in load_existing_study(config).get_trials()]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 2, lines
    assert our_containers(engine, workdir) == []
    with pytest.raises(NotFound):
        leftover.reload()

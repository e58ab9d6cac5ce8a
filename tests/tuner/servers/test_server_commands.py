"""Exact command lines and container specs, and the rules on flags and ports."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

from model_server.batching_parameters import BatchingParameters, parse_text
from tuner.servers import ServerConfigError, ServerSpec, binary, embedded
from tuner.servers.base import PortConflictError
from tuner.servers.docker_backend import container_spec
from tuner.servers.flags import MONITORING_CONFIG, write_batching_file, write_monitoring_config
from tuner.servers.ports import check_ports_free, port_in_use

MODEL = Path("/srv/models/sentiment")
SPEC = ServerSpec(
    model_name="sentiment",
    model_base_path=MODEL,
    grpc_port=8500,
    rest_port=8501,
    extra_flags={"file_system_poll_wait_seconds": "0"},
)
SUGGESTED = {"tensorflow_intra_op_parallelism": "2", "tensorflow_inter_op_parallelism": "1"}


def test_embedded_command_line() -> None:
    batching = Path("/runs/t1/batching_parameters.txt")
    assert embedded.command_line(SPEC, batching, SUGGESTED) == [
        sys.executable,
        "-m",
        "model_server",
        "--port=8500",
        "--rest_api_port=8501",
        "--model_name=sentiment",
        "--model_base_path=/srv/models/sentiment",
        "--enable_batching",
        "--batching_parameters_file=/runs/t1/batching_parameters.txt",
        "--tensorflow_intra_op_parallelism=2",
        "--tensorflow_inter_op_parallelism=1",
        "--file_system_poll_wait_seconds=0",
        "--bind_address=127.0.0.1",
    ]


def test_no_batching_means_no_enable_batching() -> None:
    cmd = embedded.command_line(SPEC, None, {})
    assert not any("batching" in arg for arg in cmd)


def test_binary_command_line_defuses_the_traps() -> None:
    cmd = binary.command_line(
        "/usr/bin/tensorflow_model_server",
        SPEC,
        Path("/runs/t1/batching_parameters.txt"),
        Path("/runs/t1/monitoring_config.txt"),
        SUGGESTED,
    )
    assert cmd == [
        "/usr/bin/tensorflow_model_server",
        "--port=8500",
        "--rest_api_port=8501",
        "--model_name=sentiment",
        "--model_base_path=/srv/models/sentiment",
        "--enable_batching",
        "--batching_parameters_file=/runs/t1/batching_parameters.txt",
        "--max_num_load_retries=0",
        "--grpc_channel_arguments=grpc.so_reuseport=0",
        "--monitoring_config_file=/runs/t1/monitoring_config.txt",
        "--tensorflow_intra_op_parallelism=2",
        "--tensorflow_inter_op_parallelism=1",
        "--file_system_poll_wait_seconds=0",
    ]


def test_container_spec(tmp_path: Path) -> None:
    batching = tmp_path / "batching_parameters.txt"
    monitoring = tmp_path / "monitoring_config.txt"
    spec = container_spec(
        SPEC,
        image="tensorflow/serving:2.19.0",
        batching_file=batching,
        monitoring_file=monitoring,
        server_flags=SUGGESTED,
    )
    assert spec == {
        "image": "tensorflow/serving:2.19.0",
        "entrypoint": ["tensorflow_model_server"],
        "command": [
            "--port=8500",
            "--rest_api_port=8501",
            "--model_name=sentiment",
            "--model_base_path=/models/sentiment",
            "--enable_batching",
            "--batching_parameters_file=/etc/tuner/batching_parameters.txt",
            "--max_num_load_retries=0",
            "--grpc_channel_arguments=grpc.so_reuseport=0",
            "--monitoring_config_file=/etc/tuner/monitoring_config.txt",
            "--tensorflow_intra_op_parallelism=2",
            "--tensorflow_inter_op_parallelism=1",
            "--file_system_poll_wait_seconds=0",
        ],
        "name": "tuner-model-server-8500",
        "detach": True,
        "auto_remove": False,
        "init": True,
        "ports": {"8500/tcp": ("127.0.0.1", 8500), "8501/tcp": ("127.0.0.1", 8501)},
        "volumes": {
            "/srv/models/sentiment": {"bind": "/models/sentiment", "mode": "ro"},
            str(batching): {"bind": "/etc/tuner/batching_parameters.txt", "mode": "ro"},
            str(monitoring): {"bind": "/etc/tuner/monitoring_config.txt", "mode": "ro"},
        },
        "labels": {"io.github.tfserving-batching-tuner": "model-server"},
    }
    unbatched = container_spec(
        SPEC, image="img", batching_file=None, monitoring_file=monitoring, server_flags={}
    )
    assert not any("batching" in arg for arg in unbatched["command"])
    assert str(batching) not in unbatched["volumes"]


def test_flag_conflicts_are_config_errors() -> None:
    with pytest.raises(ServerConfigError, match="--port, which the tuner manages"):
        ServerSpec("m", MODEL, 1, 2, extra_flags={"port": "9"})
    with pytest.raises(ServerConfigError, match="invalid flag name '--x'"):
        ServerSpec("m", MODEL, 1, 2, extra_flags={"--x": "1"})
    with pytest.raises(ServerConfigError, match="both tuned by the search space"):
        embedded.command_line(SPEC, None, {"file_system_poll_wait_seconds": "1"})
    with pytest.raises(ServerConfigError, match="--max_num_load_retries"):
        spec = ServerSpec("m", MODEL, 1, 2, extra_flags={"max_num_load_retries": "5"})
        binary.command_line("tfs", spec, None, Path("/m.txt"), {})
    with pytest.raises(ServerConfigError, match="both 7"):
        ServerSpec("m", MODEL, 7, 7)
    with pytest.raises(ServerConfigError, match="between 1 and 65535"):
        ServerSpec("m", MODEL, 0, 7)


def test_spec_resolves_a_relative_model_path() -> None:
    spec = ServerSpec("m", Path("models/sentiment"), 1, 2)
    assert spec.model_base_path == Path.cwd() / "models" / "sentiment"


def test_config_files(tmp_path: Path) -> None:
    params = BatchingParameters(max_batch_size=32, batch_timeout_micros=1000)
    path = write_batching_file(tmp_path, params)
    assert path == tmp_path / "batching_parameters.txt"
    assert parse_text(path.read_text()) == params
    assert write_batching_file(tmp_path, None) is None and not path.exists()
    monitoring = write_monitoring_config(tmp_path)
    assert (
        monitoring.read_text()
        == MONITORING_CONFIG
        == ('prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n')
    )


def test_port_checks() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        assert port_in_use("127.0.0.1", busy) and port_in_use("0.0.0.0", busy)
        spec = ServerSpec("m", MODEL, grpc_port=busy, rest_port=busy + 1 if busy < 65535 else 1)
        with pytest.raises(PortConflictError) as caught:
            check_ports_free(spec, "127.0.0.1")
        assert caught.value.port == busy and caught.value.reason == "port_conflict"
        assert f"port {busy} (server.grpc_port) is already in use" in str(caught.value)
    assert not port_in_use("127.0.0.1", busy)

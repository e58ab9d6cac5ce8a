"""A server that cannot start says why in one line on stderr, exits 255, binds nothing.

255 is tensorflow_model_server's code for every start-up failure: main.cc returns -1 when its
flags do not parse or Server::BuildAndStart fails (a failed initial load included).

Each case runs `python -m model_server` as a user would and checks the whole of stderr: one
line, no traceback, naming the cause. Failures the server can detect before binding (flags,
batching file, ports, model path) must also leave both ports free.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from model_server.flags import EXIT_CANNOT_START as EXIT
from tuner.process import free_port

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def run_server(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "model_server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single line on stderr; fails with the whole stderr when there is more or none."""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{result.stderr}"
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.fixture
def ports() -> tuple[int, int]:
    return free_port(), free_port()


@pytest.fixture
def base_args(ports, demo_model_dir) -> list[str]:
    grpc_port, rest_port = ports
    return [
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--model_name=sentiment",
        f"--model_base_path={demo_model_dir}",
    ]


def assert_failed_before_binding(
    result: subprocess.CompletedProcess[str], ports: tuple[int, int], code: int, *fragments: str
) -> None:
    assert result.returncode == code, result.stderr
    line = one_line(result)
    for fragment in fragments:
        assert fragment in line
    assert all(port_is_free(port) for port in ports)


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_batching_file_syntax_error_names_file_and_line(tmp_path, base_args, ports) -> None:
    text = "max_batch_size { value: 8 }\n\nbatch_timeout_micros { value: 1O0 }\n"
    bad = write(tmp_path / "batching.txt", text)
    result = run_server(*base_args, "--enable_batching", f"--batching_parameters_file={bad}")
    assert_failed_before_binding(result, ports, EXIT, str(bad), "line 3", "1O0")


def test_batching_file_with_unknown_field_names_file_and_line(tmp_path, base_args, ports) -> None:
    bad = write(tmp_path / "batching.txt", "max_batch_size { value: 8 }\nbatch_size: 4\n")
    result = run_server(*base_args, "--enable_batching", f"--batching_parameters_file={bad}")
    assert_failed_before_binding(result, ports, EXIT, str(bad), "line 2", "batch_size")


def test_batching_rule_violation_names_the_rule(tmp_path, base_args, ports) -> None:
    bad = write(
        tmp_path / "batching.txt",
        "max_batch_size { value: 8 }\nallowed_batch_sizes: 2\nallowed_batch_sizes: 4\n",
    )
    result = run_server(*base_args, "--enable_batching", f"--batching_parameters_file={bad}")
    assert_failed_before_binding(
        result, ports, EXIT, str(bad), "last entry of allowed_batch_sizes", "max_batch_size"
    )


def test_missing_batching_file_is_named(tmp_path, base_args, ports) -> None:
    missing = tmp_path / "nope.txt"
    result = run_server(*base_args, "--enable_batching", f"--batching_parameters_file={missing}")
    assert_failed_before_binding(result, ports, EXIT, str(missing))


def test_batching_file_without_enable_batching(tmp_path, base_args, ports) -> None:
    good = write(tmp_path / "batching.txt", "max_batch_size { value: 8 }\n")
    result = run_server(*base_args, f"--batching_parameters_file={good}")
    assert_failed_before_binding(result, ports, EXIT, "--enable_batching")


@pytest.mark.parametrize(
    ("flag", "fragment"),
    [
        ("--port=http", "--port"),
        ("--rest_api_port=70000", "--rest_api_port"),
        ("--enable_batching=maybe", "--enable_batching"),
        ("--tensorflow_intra_op_parallelism=-1", "--tensorflow_intra_op_parallelism"),
    ],
)
def test_bad_flag_value_exits_255_with_one_line(base_args, ports, flag, fragment) -> None:
    result = run_server(*base_args, flag)
    assert_failed_before_binding(result, ports, EXIT, fragment)


def test_same_port_for_grpc_and_rest(demo_model_dir, ports) -> None:
    grpc_port, _ = ports
    result = run_server(
        f"--port={grpc_port}", f"--rest_api_port={grpc_port}", f"--model_base_path={demo_model_dir}"
    )
    assert_failed_before_binding(result, ports, EXIT, "--rest_api_port", str(grpc_port))


def test_missing_model_base_path(tmp_path, ports) -> None:
    grpc_port, rest_port = ports
    missing = tmp_path / "models" / "sentiment"
    result = run_server(
        f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_base_path={missing}"
    )
    assert_failed_before_binding(result, ports, EXIT, str(missing), "does not exist")


def test_model_base_path_without_numeric_versions(tmp_path, ports) -> None:
    grpc_port, rest_port = ports
    (tmp_path / "latest").mkdir()
    (tmp_path / "latest" / "saved_model.pb").write_bytes(b"")
    (tmp_path / "2").mkdir()  # numeric, but holds no SavedModel
    result = run_server(
        f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_base_path={tmp_path}"
    )
    assert_failed_before_binding(result, ports, EXIT, str(tmp_path), "no servable version")


@pytest.fixture
def occupied() -> Iterator[int]:
    """A port some other program listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_grpc_port_in_use(occupied, demo_model_dir) -> None:
    rest_port = free_port()
    result = run_server(
        f"--port={occupied}", f"--rest_api_port={rest_port}", f"--model_base_path={demo_model_dir}"
    )
    assert result.returncode == EXIT
    line = one_line(result)
    assert "gRPC port" in line and str(occupied) in line
    assert port_is_free(rest_port)


def test_rest_port_in_use(occupied, demo_model_dir) -> None:
    grpc_port = free_port()
    result = run_server(
        f"--port={grpc_port}", f"--rest_api_port={occupied}", f"--model_base_path={demo_model_dir}"
    )
    assert result.returncode == EXIT
    line = one_line(result)
    assert "REST API port" in line and str(occupied) in line
    assert port_is_free(grpc_port)


def test_model_that_fails_to_load_exits_255_without_binding(tmp_path, ports) -> None:
    """As TF Serving (server.cc loads in ServerCore::Create before building the gRPC server):
    the log says so in key=value lines, the last line is the reason, no port was ever bound."""
    grpc_port, rest_port = ports
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "saved_model.pb").write_bytes(b"not a protobuf")
    result = run_server(
        f"--port={grpc_port}", f"--rest_api_port={rest_port}", f"--model_base_path={tmp_path}"
    )
    assert result.returncode == EXIT, result.stderr
    lines = result.stderr.splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("model_server: error: cannot load the SavedModel at ")
    assert str(tmp_path / "1") in lines[-1]
    # Nothing but our own structured lines: TensorFlow's native start-up chatter is filtered.
    assert all(line.startswith("ts=") for line in lines[:-1]), result.stderr
    assert any("event=load_failed" in line for line in lines)
    assert not any("event=listening" in line for line in lines)
    assert all(port_is_free(port) for port in ports)

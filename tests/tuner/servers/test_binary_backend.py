"""The binary backend, run against a stand-in `tensorflow_model_server` put first on PATH.

The stand-in parses flags as strictly as the real binary (unknown flag: exit 2), records
its argv and pid, then either execs the embedded model server with the same flags or
misbehaves on command (STANDIN_MODE): exit, hang ignoring SIGTERM, or serve without REST.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from model_server.batching_parameters import BatchingParameters
from tuner.process import free_port
from tuner.servers import (
    BackendUnavailableError,
    BinaryBackend,
    PortConflictError,
    ServerConfigError,
    ServerExitedBeforeReady,
    ServerNeverReady,
    ServerSpec,
    create_backend,
)
from tuner.servers.metrics import scrape
from tuner.servers.ports import port_in_use

STANDIN = """\
#!{python}
import json, os, signal, sys, time

KNOWN = {{
    "port", "rest_api_port", "rest_api_num_threads", "rest_api_timeout_in_ms",
    "model_name", "model_base_path", "enable_batching", "batching_parameters_file",
    "max_num_load_retries", "load_retry_interval_micros", "file_system_poll_wait_seconds",
    "tensorflow_intra_op_parallelism", "tensorflow_inter_op_parallelism",
    "monitoring_config_file", "grpc_channel_arguments",
}}
with open(os.environ["STANDIN_RECORD"], "a") as record:
    record.write(json.dumps({{"pid": os.getpid(), "argv": sys.argv}}) + "\\n")
for arg in sys.argv[1:]:
    name, eq, value = arg[2:].partition("=")
    if not arg.startswith("--") or name not in KNOWN or (not eq and name != "enable_batching"):
        print(f"ERROR: Unknown command line flag '{{arg}}'", flush=True)
        sys.exit(2)
mode = os.environ.get("STANDIN_MODE", "serve")
if mode == "exit":
    print("Failed to start server. Error: the stand-in was told to fail", flush=True)
    sys.exit(3)
if mode == "hang":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    print("stand-in: ignoring SIGTERM", flush=True)
    while True:
        time.sleep(1)
args = sys.argv[1:]
if mode == "no_rest":  # what the real binary does when its REST port cannot bind
    args = ["--rest_api_port=0" if a.startswith("--rest_api_port=") else a for a in args]
os.execv(sys.executable, [sys.executable, "-m", "model_server", *args])
"""


@pytest.fixture
def standin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "tensorflow_model_server"
    exe.write_text(STANDIN.format(python=sys.executable))
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("STANDIN_RECORD", str(tmp_path / "standin_record.jsonl"))
    return exe


def records(tmp_path: Path) -> list[dict]:
    path = tmp_path / "standin_record.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def spec_for(model_dir: Path, **overrides) -> ServerSpec:
    settings = {"ready_timeout_s": 90.0, "stop_timeout_s": 20.0, **overrides}
    return ServerSpec("sentiment", model_dir, free_port(), free_port(), **settings)


def test_auto_picks_the_binary_and_passes_exact_flags(
    standin: Path, demo_model_dir: Path, tmp_path: Path
) -> None:
    spec = spec_for(demo_model_dir, extra_flags={"file_system_poll_wait_seconds": "0"})
    backend, why = create_backend("auto", spec)
    assert isinstance(backend, BinaryBackend)
    assert why == f"auto picked the binary backend: tensorflow_model_server was found at {standin}."
    workdir = tmp_path / "trial"
    params = BatchingParameters(max_batch_size=16, batch_timeout_micros=1000)
    try:
        backend.start(params, {"tensorflow_intra_op_parallelism": "1"}, workdir)
        [record] = records(tmp_path)
        assert record["argv"] == [
            str(standin),
            f"--port={spec.grpc_port}",
            f"--rest_api_port={spec.rest_port}",
            "--model_name=sentiment",
            f"--model_base_path={demo_model_dir.resolve()}",
            "--enable_batching",
            f"--batching_parameters_file={workdir / 'batching_parameters.txt'}",
            "--max_num_load_retries=0",
            "--grpc_channel_arguments=grpc.so_reuseport=0",
            f"--monitoring_config_file={workdir / 'monitoring_config.txt'}",
            "--tensorflow_intra_op_parallelism=1",
            "--file_system_poll_wait_seconds=0",
        ]
        assert (workdir / "monitoring_config.txt").read_text() == (
            'prometheus_config {\n  enable: true\n  path: "/monitoring/prometheus/metrics"\n}\n'
        )
        assert backend.pids == [record["pid"]]  # exec kept the pid
        assert scrape(backend.metrics_url).request_count_by_status is not None
    finally:
        backend.stop()
    assert not psutil.pid_exists(record["pid"])
    assert not port_in_use("0.0.0.0", spec.grpc_port)


def test_a_server_without_rest_is_a_port_conflict(
    standin: Path, demo_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "no_rest")
    backend = BinaryBackend(spec_for(demo_model_dir))
    with pytest.raises(PortConflictError) as caught:
        backend.start(None, {}, tmp_path / "trial")
    assert caught.value.reason == "port_conflict"
    assert f"REST port {backend.spec.rest_port} does not answer" in str(caught.value)
    assert not backend.is_running()
    assert not psutil.pid_exists(records(tmp_path)[0]["pid"])


def test_exit_before_ready_reports_code_and_log(
    standin: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "exit")
    backend = BinaryBackend(spec_for(tmp_path))
    with pytest.raises(ServerExitedBeforeReady) as caught:
        backend.start(None, {}, tmp_path / "trial")
    assert caught.value.exit_code == 3 and caught.value.reason == "server_exited"
    assert "exited with code 3" in str(caught.value)
    assert "the stand-in was told to fail" in str(caught.value)
    assert "the stand-in was told to fail" in caught.value.log_tail


def test_unknown_flags_are_refused_before_the_binary_starts(standin: Path, tmp_path: Path) -> None:
    # The real binary prints an unknown flag and runs without it (main.cc), so the tuner
    # refuses it itself, naming the closest real flag.
    backend = BinaryBackend(spec_for(tmp_path, extra_flags={"not_a_real_flag": "1"}))
    with pytest.raises(ServerConfigError, match="not a flag of tensorflow_model_server"):
        backend.start(None, {}, tmp_path / "trial")
    assert not backend.is_running()


def test_sigterm_ignored_means_bounded_wait_then_kill(
    standin: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("STANDIN_MODE", "hang")
    backend = BinaryBackend(spec_for(tmp_path, ready_timeout_s=2.0, stop_timeout_s=1.5))
    started = time.monotonic()
    with caplog.at_level(logging.INFO), pytest.raises(ServerNeverReady) as caught:
        backend.start(None, {}, tmp_path / "trial")
    elapsed = time.monotonic() - started
    assert 3.5 <= elapsed < 15
    assert "was not AVAILABLE within 2 s" in str(caught.value)
    assert "ignoring SIGTERM" in caught.value.log_tail
    assert "event=server_kill backend=binary" in caplog.text
    assert not psutil.pid_exists(records(tmp_path)[0]["pid"])


def test_missing_binary_is_backend_unavailable(tmp_path: Path) -> None:
    with pytest.raises(BackendUnavailableError, match="was not found"):
        create_backend("binary", spec_for(tmp_path), binary_path=str(tmp_path / "nope"))

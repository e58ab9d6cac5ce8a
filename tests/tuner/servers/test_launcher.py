"""The embedded backend's servers forked by one launcher (tuner/servers/launcher.py,
model_server/launcher.py), for real: the demo model, the stop rules of tuner/process.py, and
what a user or the tuner's leftover check sees of each server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from model_server.batching_parameters import BatchingParameters
from tests.tuner.servers.test_embedded_backend import predict, spec_for
from tuner.coordination.leftovers import OWNER_ENV
from tuner.servers import EmbeddedBackend, ServerExitedBeforeReady
from tuner.servers import launcher as launcher_module
from tuner.servers.embedded import LAUNCHER_ENV
from tuner.servers.launcher import LOST_EXIT_CODE
from tuner.servers.ports import port_in_use

BATCHING = BatchingParameters(max_batch_size=8, batch_timeout_micros=1000)


def parent_of(pid: int) -> int:
    return psutil.Process(pid).ppid()


def servers_of(backend: EmbeddedBackend) -> list[int]:
    """Processes of ours still serving `backend`'s port (other tests' servers may run beside)."""
    port = f"--port={backend.spec.grpc_port}"
    return [
        p.pid
        for p in psutil.process_iter(["cmdline", "status"])
        if p.info["status"] != psutil.STATUS_ZOMBIE and port in " ".join(p.info["cmdline"] or [])
    ]


def gone(pid: int, within_s: float = 10.0) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_restarts_fork_from_one_launcher_and_a_stop_leaves_nothing(
    demo_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv(OWNER_ENV, "owner-marker")
    backend = EmbeddedBackend(spec_for(demo_model_dir))
    try:
        backend.restart(BATCHING, {}, tmp_path / "t0")
        first = backend.pids[0]
        launcher = parent_of(first)
        assert launcher != os.getpid()
        predict(backend.rest_url)
        backend.restart(None, {}, tmp_path / "t1")
        second = backend.pids[0]
        assert second != first and gone(first)
        assert parent_of(second) == launcher  # the same launcher: TensorFlow imported once
        predict(backend.rest_url)
        server = psutil.Process(second)
        # ps shows the server's own command line, as an exec'd one's; the environment (the
        # leftover check's marker) is intact
        shown = " ".join(server.cmdline())
        assert "-m model_server --port=" in shown
        assert f"--model_name={backend.spec.model_name}" in shown
        assert server.environ().get(OWNER_ENV) == "owner-marker"
        assert "-m model_server " not in " ".join(psutil.Process(launcher).cmdline())
        assert "forked by launcher pid" in (tmp_path / "t1" / "server.log").read_text()
    finally:
        backend.stop()
    assert gone(launcher) and gone(second)
    assert not port_in_use("127.0.0.1", backend.spec.grpc_port)
    assert servers_of(backend) == []


def test_a_killed_server_reports_the_signal_and_the_next_start_works(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    backend = EmbeddedBackend(spec_for(demo_model_dir))
    try:
        backend.start(None, {}, tmp_path / "t0")
        pid = backend.pids[0]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while backend.is_running() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not backend.is_running() and backend.exit_code() == -signal.SIGKILL
        backend.restart(None, {}, tmp_path / "t1")
        predict(backend.rest_url)
    finally:
        backend.stop()


def test_a_stopped_server_is_woken_then_stopped_with_its_group(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    backend = EmbeddedBackend(spec_for(demo_model_dir, stop_timeout_s=2.0))
    backend.start(None, {}, tmp_path / "t0")
    pid = backend.pids[0]
    os.kill(pid, signal.SIGSTOP)
    started = time.monotonic()
    backend.stop()
    assert gone(pid, within_s=1.0) and time.monotonic() - started < 15
    assert not port_in_use("127.0.0.1", backend.spec.rest_port)


def test_a_bad_flag_ends_the_same_way_forked_or_execd(
    demo_model_dir: Path, tmp_path: Path, monkeypatch
) -> None:
    def failure(where: str) -> ServerExitedBeforeReady:
        spec = spec_for(demo_model_dir, extra_flags={"tensorflow_intra_op_parallelism": "many"})
        backend = EmbeddedBackend(spec)
        with pytest.raises(ServerExitedBeforeReady) as caught:
            backend.start(None, {}, tmp_path / where)
        backend.stop()
        return caught.value

    forked = failure("forked")
    monkeypatch.setenv(LAUNCHER_ENV, "0")
    execd = failure("execd")
    assert forked.exit_code == execd.exit_code != 0
    last = execd.log_tail.strip().splitlines()[-1]
    assert "--tensorflow_intra_op_parallelism" in last and "'many'" in last
    assert forked.log_tail.strip().splitlines()[-1] == last


def test_a_killed_launcher_leaves_its_server_stoppable_and_is_replaced(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    backend = EmbeddedBackend(spec_for(demo_model_dir, stop_timeout_s=5.0))
    try:
        backend.start(None, {}, tmp_path / "t0")
        pid = backend.pids[0]
        launcher = parent_of(pid)
        os.kill(launcher, signal.SIGKILL)
        assert gone(launcher)
        assert backend.is_running()  # the server outlives it, still ours to stop
        os.kill(pid, signal.SIGTERM)
        assert gone(pid)
        # its exit code went with the launcher: said as a failure, never as a clean exit
        assert not backend.is_running() and backend.exit_code() == LOST_EXIT_CODE != 0
        backend.stop_server()
        backend.start(None, {}, tmp_path / "t1")
        assert parent_of(backend.pids[0]) not in (launcher, os.getpid())
        predict(backend.rest_url)
    finally:
        backend.stop()
    assert servers_of(backend) == []


def test_a_launcher_that_cannot_start_leaves_the_server_to_exec(
    demo_model_dir: Path, tmp_path: Path, monkeypatch, caplog
) -> None:
    monkeypatch.setattr(launcher_module, "COMMAND", ["false"])
    backend = EmbeddedBackend(spec_for(demo_model_dir))
    try:
        backend.start(None, {}, tmp_path / "t0")
        assert parent_of(backend.pids[0]) == os.getpid()
        predict(backend.rest_url)
    finally:
        backend.stop()
    assert "event=launcher_unavailable" in caplog.text


TUNER = """
import sys, time
from pathlib import Path
from tests.tuner.servers.test_embedded_backend import spec_for
from tuner.servers import EmbeddedBackend
backend = EmbeddedBackend(spec_for(Path(sys.argv[1])))
backend.start(None, {}, Path(sys.argv[2]))
print(backend.pids[0], flush=True)
time.sleep(120)
"""


def test_a_launcher_whose_tuner_was_killed_stops_its_server_and_exits(
    demo_model_dir: Path, tmp_path: Path
) -> None:
    repo = Path(__file__).resolve().parents[3]
    tuner = subprocess.Popen(
        [sys.executable, "-c", TUNER, str(demo_model_dir), str(tmp_path / "t0")],
        stdout=subprocess.PIPE,
        cwd=repo,
        text=True,
    )
    try:
        server = int(tuner.stdout.readline())
        launcher = parent_of(server)
        assert psutil.Process(launcher).ppid() == tuner.pid
    finally:
        tuner.kill()  # as the OOM killer would: no stop, no cleanup of its own
        tuner.wait()
        tuner.stdout.close()
    assert gone(server, within_s=15.0) and gone(launcher, within_s=15.0)

"""Starting the model server for real, and whose fault a failed start is: a port the tuner
chose that another process took is chosen again; a configured one fails the trial in one
sentence; a server that does not start at all is the bench's fault, one that does not start
with the trial's configuration is the configuration's."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from model_server.batching_parameters import BatchingParameters
from tuner.config import TunerConfig, load_config
from tuner.coordination.resume import BENCH_FAULTS, counted_trials, fail_reason
from tuner.errors import TrialFailed
from tuner.measure.server_start import CONTROL_DIR, SERVER_START_FAILED, ServerStarter, port_mover
from tuner.process import free_port
from tuner.servers import EmbeddedBackend, ServerSpec
from tuner.servers.study_ports import PORTS_ATTR
from tuner.study.run import REAL_PARTS, optimize

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
BATCHING = BatchingParameters(
    max_batch_size=8, batch_timeout_micros=1000, num_batch_threads=1, max_enqueued_batches=8
)


@pytest.fixture
def holder() -> Iterator[list[socket.socket]]:
    """Ports held as another program would hold them: bound and listening, until the end."""
    sockets: list[socket.socket] = []
    yield sockets
    for sock in sockets:
        sock.close()


def hold(sockets: list[socket.socket], port: int = 0) -> int:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", port))
    sock.listen()
    sockets.append(sock)
    return sock.getsockname()[1]


def tiny_study(tmp_path: Path, model: Path, **server: object) -> TunerConfig:
    config = load_config(
        None,
        {
            "study": {"name": "s", "storage": f"sqlite:///{tmp_path / 't.db'}", "n_trials": 1},
            "server": {"backend": "embedded", "model_base_path": str(model), **server},
            "search": {"space": "quick"},
            "load": {"mode": "closed", "users": 2, "warmup_s": 1.0, "measure_s": 1.0},
            "objective": {"slo_ms": 1000.0},
            "confirm": {"top_k": 0},
        },
    )
    config.base_dir = tmp_path
    return config


def test_a_port_the_tuner_chose_that_another_process_took_is_chosen_again(
    tmp_path: Path, demo_model_dir: Path, holder: list, caplog: pytest.LogCaptureFixture
) -> None:
    config = tiny_study(tmp_path, demo_model_dir)
    chosen = []

    def create_backend(*args, **kwargs):
        backend, why = REAL_PARTS.create_backend(*args, **kwargs)
        chosen.append(backend.spec.grpc_port)
        hold(holder, backend.spec.grpc_port)  # taken between the tuner's choice and its trial
        return backend, why

    with caplog.at_level(logging.WARNING, logger="tuner"):
        optimize(
            config, say=lambda line: None, parts=replace(REAL_PARTS, create_backend=create_backend)
        )

    study = optuna.load_study(study_name="s", storage=config.study.storage)
    (trial,) = study.get_trials(states=[TrialState.COMPLETE, TrialState.FAIL])
    assert trial.state == TrialState.COMPLETE, trial.user_attrs.get("fail_detail")
    assert trial.user_attrs["rps"] > 0  # through the service, pointed at the new gRPC port
    (stored,) = study.user_attrs[PORTS_ATTR].values()
    assert stored["grpc"] != chosen[0]
    moved = [r.getMessage() for r in caplog.records if "server_ports_moved" in r.getMessage()]
    assert len(moved) == 1 and f"taken={chosen[0]} grpc_port={stored['grpc']}" in moved[0]


def test_a_configured_port_that_is_taken_fails_in_one_sentence_and_stops_the_tuner(
    tmp_path: Path, demo_model_dir: Path, holder: list
) -> None:
    port = hold(holder)
    (tmp_path / "tuner.toml").write_text(
        f'[study]\nname = "s"\nstorage = "sqlite:///{tmp_path / "t.db"}"\nn_trials = 4\n'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{demo_model_dir}"\n'
        f"grpc_port = {port}\n"
        '[search]\nspace = "quick"\n[load]\nmode = "closed"\n'
    )
    run = subprocess.run(
        [sys.executable, "-m", "tuner", "optimize"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )

    assert run.returncode == 1, run.stderr[-2000:]
    assert "Traceback" not in run.stderr
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("error: 3 trials in a row (0, 1, 2) failed for a reason that is the ")
    assert f"port {port} (server.grpc_port) is already in use" in last
    study = optuna.load_study(study_name="s", storage=f"sqlite:///{tmp_path / 't.db'}")
    failed = study.get_trials(states=[TrialState.FAIL])
    assert [fail_reason(t) for t in failed] == ["port_conflict"] * 3
    assert all(f"port {port} (server.grpc_port)" in t.user_attrs["fail_detail"] for t in failed)
    assert counted_trials(study) == 0  # none burned: they run again once the port is free


def embedded(model: Path) -> EmbeddedBackend:
    return EmbeddedBackend(
        ServerSpec("sentiment", model, free_port(), free_port(), ready_timeout_s=90.0)
    )


def test_a_server_that_exits_because_a_port_was_taken_after_the_check_is_moved(
    tmp_path: Path, demo_model_dir: Path, holder: list
) -> None:
    """The port check passed, then another process bound the gRPC port before the server
    did: the server exits, the port is found held, and it is chosen again."""
    backend = embedded(demo_model_dir)
    first = backend.spec.grpc_port
    log = tmp_path / "trial" / "server.log"

    def take_it_once_launched() -> None:  # the log's first line is written after the check
        deadline = time.monotonic() + 60
        while not (log.exists() and log.read_text()) and time.monotonic() < deadline:
            time.sleep(0.001)
        hold(holder, first)

    taker = threading.Thread(target=take_it_once_launched)
    taker.start()
    pointed: list[str] = []
    move = port_mover(lambda taken: (free_port(), backend.spec.rest_port), backend, pointed.append)
    try:
        ServerStarter(backend, move).start(None, {}, tmp_path / "trial")
        assert backend.is_running() and backend.spec.grpc_port != first
    finally:
        taker.join()
        backend.stop()
    assert pointed == [backend.grpc_target]
    assert f"port {first} on 127.0.0.1 is not available" in log.read_text()


def test_a_configuration_the_server_does_not_start_with_is_its_own_fault(
    tmp_path: Path, demo_model_dir: Path
) -> None:
    backend = embedded(demo_model_dir)
    try:
        with pytest.raises(TrialFailed) as failed:
            ServerStarter(backend).start(
                BATCHING, {"tensorflow_intra_op_parallelism": "many"}, tmp_path / "trial"
            )
    finally:
        backend.stop()
    assert failed.value.reason == "server_exited" and "server_exited" not in BENCH_FAULTS
    assert "tensorflow_intra_op_parallelism" in str(failed.value)
    # The server did start without the configuration: the control start's log says so.
    assert "event=available" in (tmp_path / "trial" / CONTROL_DIR / "server.log").read_text()


def test_a_server_that_starts_with_no_configuration_either_is_the_benchs_fault(
    tmp_path: Path,
) -> None:
    (tmp_path / "model").mkdir()  # the model is gone: nothing the batching file can help
    backend = embedded(tmp_path / "model")
    try:
        with pytest.raises(TrialFailed) as failed:
            ServerStarter(backend).start(BATCHING, {}, tmp_path / "trial")
    finally:
        backend.stop()
    assert failed.value.reason == SERVER_START_FAILED and SERVER_START_FAILED in BENCH_FAULTS
    assert str(failed.value).startswith(
        "the model server did not start without this trial's batching file and flags either"
    )

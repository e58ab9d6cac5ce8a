"""Telling a part of the bench that failed under load from a measurement.

After every load step (a capacity step, or the closed loop's window) the tuner asks whether
the parts it measured through are still there: a model server that exited, a service that
died, or a model server that stopped answering make the step's figures meaningless, so the
trial fails with the reason (docs/concepts/faults.md) instead of recording errors the
configuration did not cause. Which of those reasons say nothing about the configuration, and
so run again, is tuner/coordination/resume.py's `BENCH_FAULTS`.
"""

from __future__ import annotations

from collections.abc import Mapping

import grpc

from tuner.errors import TrialFailed
from tuner.load.classify import from_dead_process
from tuner.measure.service_process import ServiceProcess
from tuner.process import log_tail
from tuner.servers import ModelServerBackend, ModelServerError
from tuner.servers.readiness import CHANNEL_OPTIONS, model_state

SERVER_PROBE_S = 5.0  # a live server answers GetModelStatus in milliseconds, even loaded


def check_server(backend: ModelServerBackend) -> None:
    """A model server that died under load fails the trial `server_exited`: its figures are
    not its own. The exit code (negative: the signal) and the log's tail say why."""
    try:
        running = backend.is_running()
    except ModelServerError as exc:  # e.g. the Docker engine stopped answering
        raise TrialFailed(exc.reason, str(exc)) from None
    if running:
        return
    code = backend.exit_code()
    how = f" with code {code}" if code is not None else ""
    details: dict[str, object] = {"log_tail": backend.log_tail()}
    if code is not None:
        details["exit_code"] = code
    raise TrialFailed(
        "server_exited",
        f"the model server exited{how} during the load test (log: {backend.log_path})",
        **details,
    )


def check_service(service: ServiceProcess, failures_by_code: Mapping[str, int]) -> None:
    """The service died under load: `service_failed`, never a capacity read from connection
    errors. The tuner's own service is seen exiting; a service the user runs is taken for dead
    when the step's failures were connection errors and it no longer answers /healthz."""
    code = service.exit_code()
    if code is not None:
        raise TrialFailed(
            "service_failed",
            f"the prediction service exited with code {code} during the load test, so the "
            "step's errors are not the configuration's; the tuner starts it again for the "
            f"next trial (log: {service.log_path})",
            log_tail=log_tail(service.log_path),
        )
    if from_dead_process(failures_by_code) and not service.answers():
        raise TrialFailed(
            "service_failed",
            f"the prediction service at {service.url} stopped answering during the load test "
            f"(the step's failures: {dict(failures_by_code)}), so they are not the "
            "configuration's; start it again before the next trial",
        )


def check_server_answers(backend: ModelServerBackend, model_name: str) -> None:
    """A hung model server (alive, ports open, answering nothing) fails a step on latency or
    errors like an overloaded one: ask it for the model's status, and fail the trial
    `server_unresponsive` when it does not answer within SERVER_PROBE_S."""
    with grpc.insecure_channel(backend.grpc_target, options=CHANNEL_OPTIONS) as channel:
        state = model_state(channel, model_name, timeout=SERVER_PROBE_S, wait_for_ready=True)
    if state == "AVAILABLE":
        return
    raise TrialFailed(
        "server_unresponsive",
        f"the model server stopped answering during the load test (GetModelStatus: {state} "
        f"within {SERVER_PROBE_S:g} s), so the step's figures are not its configuration's; "
        f"it is stopped and started again for the next trial (log: {backend.log_path})",
        log_tail=backend.log_tail(),
    )

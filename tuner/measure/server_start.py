"""Starting the model server for a measurement, and saying whose fault a failed start is.

Two things can stop a server from starting that say nothing about the configuration measured:

- A port. A port the tuner chose itself that another process took meanwhile is chosen again
  (`move_ports`: stored with the study, the service pointed at it) and the start goes on; only
  a port the user configured fails the trial `port_conflict`. A server that exits while one of
  its ports is held by someone else is taken for a port conflict too: the embedded server and
  the binary each check their ports themselves, after our check, and a process may slip in
  between.
- The bench itself: a model that no longer loads, a machine out of memory. A server that
  exits (or never becomes AVAILABLE) with a batching file might be that, or the batching file.
  So the tuner asks the bench: it starts the server without the trial's batching file and
  flags (the control start). If that fails too, the trial fails `server_start_failed`, a fault
  of the bench (tuner/coordination/resume.py re-queues it, uncounted). If the control starts, the
  configuration is tried once more: failing again, it is the configuration's fault and fails
  the trial as it did (`server_exited`, `never_ready`: counted); starting, the first failure
  was a passing one and the trial goes on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from model_server.batching_parameters import BatchingParameters
from tuner.errors import TrialFailed
from tuner.servers.base import (
    ModelServerBackend,
    ModelServerError,
    PortConflictError,
    ServerExitedBeforeReady,
    ServerNeverReady,
)
from tuner.servers.ports import check_ports_free

log = logging.getLogger("tuner")
SERVER_START_FAILED = "server_start_failed"
CONTROL_DIR = "control-start"  # in the trial's workdir: the control start's log
MAX_PORT_MOVES = 3
NOT_STARTING = (ServerExitedBeforeReady, ServerNeverReady)


def trial_failed(exc: ModelServerError) -> TrialFailed:
    details: dict[str, object] = {"log_tail": exc.log_tail}
    if getattr(exc, "exit_code", None) is not None:
        details["exit_code"] = exc.exit_code  # type: ignore[attr-defined]
    return TrialFailed(exc.reason, str(exc), **details)


@dataclass
class ServerStarter:
    """Starts `backend` for one measurement; raises TrialFailed with the reason when it
    cannot. `move_ports(port)` moves the server off a taken port the tuner chose itself and
    returns True, or returns False for a configured port (None: no port is ever moved)."""

    backend: ModelServerBackend
    move_ports: Callable[[int], bool] | None = None

    def start(
        self, batching: BatchingParameters | None, server_flags: Mapping[str, str], workdir: Path
    ) -> None:
        try:
            self._start(batching, server_flags, workdir)
            return
        except NOT_STARTING as exc:
            first = exc
        configured = batching is not None or bool(server_flags)
        if configured:
            try:
                self._start(None, {}, workdir / CONTROL_DIR)
            except NOT_STARTING as control:
                raise self._bench_fault(
                    first, control, "without this trial's batching file and flags either"
                ) from None
            log.warning(
                "event=control_start_ok reason=%s detail=%r: trying the configuration again",
                first.reason,
                str(first),
            )
        try:
            self._start(batching, server_flags, workdir)
        except NOT_STARTING as again:
            if configured:
                raise trial_failed(again) from None
            raise self._bench_fault(first, again, "twice, with no batching file") from None
        log.warning("event=server_started_on_second_try first_failure=%r", str(first))

    def _start(
        self, batching: BatchingParameters | None, server_flags: Mapping[str, str], workdir: Path
    ) -> None:
        """One start; a port the tuner chose that turns out taken is moved off, up to
        MAX_PORT_MOVES times. Raises NOT_STARTING for the caller to judge, else TrialFailed."""
        moves = 0
        while True:
            try:
                self.backend.restart(batching, server_flags, workdir)
                return
            except PortConflictError as exc:
                conflict = exc
            except ServerExitedBeforeReady:
                held = self._port_held()
                if held is None:
                    raise
                conflict = held
            except NOT_STARTING:
                raise
            except ModelServerError as exc:
                raise trial_failed(exc) from None
            moved = (
                moves < MAX_PORT_MOVES
                and self.move_ports is not None
                and self.move_ports(conflict.port)
            )
            if not moved:
                raise trial_failed(conflict) from None
            moves += 1

    def _port_held(self) -> PortConflictError | None:
        """The port conflict that explains a server that exited: one of its ports is held by
        another process now. ProcessBackend binds where the server does; others on the spec's
        host."""
        bind_host = getattr(self.backend, "bind_host", self.backend.spec.host)
        try:
            check_ports_free(self.backend.spec, bind_host)
        except PortConflictError as exc:
            return exc
        return None

    @staticmethod
    def _bench_fault(first: ModelServerError, last: ModelServerError, how: str) -> TrialFailed:
        failed = trial_failed(last)
        return TrialFailed(
            SERVER_START_FAILED,
            f"the model server did not start {how} ({last}), so the bench is at fault, not "
            f"the configuration; the first failure: {first}",
            **failed.details,
        )


def port_mover(
    choose_again: Callable[[int], tuple[int, int] | None],
    backend: ModelServerBackend,
    point_service: Callable[[str], None],
) -> Callable[[int], bool]:
    """ServerStarter's `move_ports`: `choose_again(taken)` gives this tuner's new ports (None
    for a configured port); the backend takes them, and when the gRPC port moved the service
    is pointed at it (`point_service(grpc_target)`), as it keeps one channel to the server."""

    def move(taken: int) -> bool:
        ports = choose_again(taken)
        spec = backend.spec
        if ports is None or ports == (spec.grpc_port, spec.rest_port):
            return False
        backend.spec = replace(spec, grpc_port=ports[0], rest_port=ports[1])
        log.warning(
            "event=server_ports_moved taken=%d grpc_port=%d rest_port=%d: another process holds "
            "a port this tuner chose; it chose another and the trial goes on",
            taken,
            *ports,
        )
        if ports[0] != spec.grpc_port:
            point_service(backend.grpc_target)
        return True

    return move

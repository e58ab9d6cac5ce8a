"""The one interface every model-server backend implements, and the errors they raise.

A trial restarts the model server with new batching parameters on the SAME ports (the
service keeps its gRPC channel for the whole study), waits until the model is AVAILABLE,
and later stops it. Every failure carries a `reason` slug (stored as the trial's
`fail_reason`) and the tail of the server's log.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from model_server.batching_parameters import BatchingParameters
from tuner.servers.defaults import METRICS_PATH
from tuner.servers.readiness import NeverReadyError, ServerExitedError, wait_until_available

# Flags every backend sets itself; a user's extra flags may not override them.
MANAGED_FLAGS = frozenset(
    {
        "port",
        "rest_api_port",
        "model_name",
        "model_base_path",
        "enable_batching",
        "batching_parameters_file",
    }
)
_FLAG_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


def last_line(tail: str) -> str:
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


class ServerConfigError(ValueError):
    """A server setting that cannot work (bad flag name, a flag the tuner manages, ...)."""


def check_flag_names(flags: Mapping[str, str], source: str) -> None:
    for name in flags:
        if not _FLAG_NAME.fullmatch(name):
            raise ServerConfigError(
                f"{source} has an invalid flag name {name!r}; write it without dashes, "
                "e.g. tensorflow_intra_op_parallelism"
            )
        if name in MANAGED_FLAGS:
            raise ServerConfigError(
                f"{source} sets --{name}, which the tuner manages itself; remove it"
            )


@dataclass(frozen=True)
class ServerSpec:
    """What stays the same for a whole study: model, ports, user flags, time bounds."""

    model_name: str
    model_base_path: Path
    grpc_port: int
    rest_port: int
    host: str = "127.0.0.1"
    extra_flags: Mapping[str, str] = field(default_factory=dict)
    ready_timeout_s: float = 120.0
    stop_timeout_s: float = 10.0
    cpus: Any = None  # a tuner.servers.cpus.CpuBudget: the server's CPU budget (server.cpus)

    def with_cpu_flags(self, server_flags: Mapping[str, str]) -> dict[str, str]:
        """The trial's flags plus TF's thread flags sized to the CPU budget, where unset."""
        if self.cpus is None:
            return dict(server_flags)
        return {**self.cpus.thread_flags(server_flags, self.extra_flags), **server_flags}

    def __post_init__(self) -> None:
        # TF Serving resolves model_base_path itself; a relative path would depend on its cwd.
        object.__setattr__(self, "model_base_path", Path(self.model_base_path).resolve())
        object.__setattr__(self, "extra_flags", {k: str(v) for k, v in self.extra_flags.items()})
        for name, port in (("grpc_port", self.grpc_port), ("rest_port", self.rest_port)):
            if not 1 <= port <= 65535:
                raise ServerConfigError(f"server.{name} must be between 1 and 65535, not {port}")
        if self.grpc_port == self.rest_port:
            raise ServerConfigError(
                f"server.grpc_port and server.rest_port are both {self.grpc_port}; "
                "choose two different ports"
            )
        if self.ready_timeout_s <= 0 or self.stop_timeout_s <= 0:
            raise ServerConfigError("server ready and stop timeouts must be positive")
        check_flag_names(self.extra_flags, "server.extra_flags")


class ModelServerError(RuntimeError):
    """The model server could not be started; `reason` is the trial's fail_reason slug."""

    reason = "model_server_error"

    def __init__(self, message: str, *, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


class PortConflictError(ModelServerError):
    reason = "port_conflict"

    def __init__(self, message: str, *, port: int, log_tail: str = "") -> None:
        super().__init__(message, log_tail=log_tail)
        self.port = port


class ServerExitedBeforeReady(ModelServerError):
    reason = "server_exited"

    def __init__(self, message: str, *, exit_code: int | None, log_tail: str = "") -> None:
        super().__init__(message, log_tail=log_tail)
        self.exit_code = exit_code


class ServerNeverReady(ModelServerError):
    reason = "never_ready"


class BackendUnavailableError(ModelServerError):
    reason = "backend_unavailable"


class CpuMeter(Protocol):
    def percent(self) -> float | None:
        """Mean CPU since the meter was made; 100 = one core."""


class ModelServerBackend(ABC):
    """One way of running a TF Serving-compatible model server (see the module docstring)."""

    name: str

    def __init__(self, spec: ServerSpec) -> None:
        self.spec = spec

    @abstractmethod
    def start(
        self,
        batching: BatchingParameters | None,
        server_flags: Mapping[str, str],
        workdir: Path,
    ) -> None:
        """Write workdir/batching_parameters.txt (when batching is not None; None = no
        --enable_batching), log to workdir/server.log, launch, and wait until AVAILABLE."""

    @abstractmethod
    def stop(self) -> None:
        """Idempotent: bounded wait, then kill; a container is removed."""

    def restart(
        self,
        batching: BatchingParameters | None,
        server_flags: Mapping[str, str],
        workdir: Path,
    ) -> None:
        self.stop_server()
        self.start(batching, server_flags, workdir)

    def stop_server(self) -> None:
        """What a restart stops before it starts again: by default all that `stop` stops (the
        embedded backend keeps its launcher)."""
        self.stop()

    @abstractmethod
    def is_running(self) -> bool: ...

    def exit_code(self) -> int | None:
        """How the server ended, once it has (negative: the signal that killed it); None
        while it runs or where the backend cannot tell."""
        return None

    def prepare(self, workdir: Path) -> list[str]:
        """Once per run, before the first trial and any port check: clean up what a killed
        tuner of the study (`workdir`) left behind; one line per thing done, for the user."""
        return []

    def cpu_meter(self) -> CpuMeter | None:
        """For backends without host pids (containers): started now, `percent()` later."""
        return None

    @property
    @abstractmethod
    def pids(self) -> list[int]:
        """OS pids to account CPU for (empty when they are not visible, e.g. docker)."""

    @property
    @abstractmethod
    def log_path(self) -> Path | None: ...

    @abstractmethod
    def log_tail(self, lines: int = 30) -> str: ...

    def _wait_available(self, process: object, *, subject: str, stopped: str) -> None:
        """Wait for AVAILABLE; on failure stop, and raise with the log's last line and tail.

        `process` is what readiness polls for an early exit (a Popen or a container view);
        `subject` names the server and `stopped` what stop() did, for the message.
        """
        try:
            wait_until_available(
                self.grpc_target,
                self.spec.model_name,
                timeout=self.spec.ready_timeout_s,
                process=process,  # type: ignore[arg-type]
            )
        except ServerExitedError as exc:
            self.stop()
            tail = self.log_tail()
            raise ServerExitedBeforeReady(
                f"the {subject} exited with code {exc.exit_code} before model "
                f"'{self.spec.model_name}' was AVAILABLE: {last_line(tail)} "
                f"(log: {self.log_path})",
                exit_code=exc.exit_code,
                log_tail=tail,
            ) from None
        except NeverReadyError as exc:
            self.stop()
            tail = self.log_tail()
            raise ServerNeverReady(
                f"model '{self.spec.model_name}' was not AVAILABLE within "
                f"{self.spec.ready_timeout_s:g} s (last state: {exc.last_state}), so the "
                f"{stopped}: {last_line(tail)} (log: {self.log_path})",
                log_tail=tail,
            ) from None

    @property
    def grpc_target(self) -> str:
        return f"{self.spec.host}:{self.spec.grpc_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.spec.host}:{self.spec.rest_port}"

    @property
    def metrics_url(self) -> str:
        return f"{self.rest_url}{METRICS_PATH}"

    def __enter__(self) -> ModelServerBackend:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()

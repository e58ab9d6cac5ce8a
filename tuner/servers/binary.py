"""The binary backend: a real `tensorflow_model_server`, with its known traps defused.

Traps (see flags.TRAP_FLAGS for the flags): a failed model load is retried for minutes;
the gRPC port uses SO_REUSEPORT, so ports are checked before launch; a REST port that
cannot bind is only logged, so after AVAILABLE the REST port must answer too; there is no
SIGTERM handler worth waiting for, so stopping is a bounded wait, then SIGKILL.
"""

from __future__ import annotations

import http.client
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path

from tuner.servers.base import BackendUnavailableError, PortConflictError, ServerSpec
from tuner.servers.defaults import DEFAULT_BINARY
from tuner.servers.flags import binary_trap_flags, model_server_flags, write_monitoring_config
from tuner.servers.process import ProcessBackend

REST_CHECK_TIMEOUT_S = 5.0


def resolve_binary(binary_path: str = DEFAULT_BINARY) -> str | None:
    """The absolute path of the binary (a name is looked up on PATH), or None."""
    return shutil.which(binary_path)


def command_line(
    binary: str,
    spec: ServerSpec,
    batching_file: Path | None,
    monitoring_file: Path,
    server_flags: Mapping[str, str],
) -> list[str]:
    return [
        binary,
        *model_server_flags(
            grpc_port=spec.grpc_port,
            rest_port=spec.rest_port,
            model_name=spec.model_name,
            model_base_path=spec.model_base_path,
            batching_file=batching_file,
            server_flags=server_flags,
            extra_flags=spec.extra_flags,
            backend_flags=binary_trap_flags(monitoring_file, server_flags, spec.extra_flags),
        ),
    ]


def rest_answers(url: str, timeout_s: float) -> bool:
    """True once GET url returns 200 (retried until timeout_s)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, http.client.HTTPException, OSError):
            pass
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.2)


class BinaryBackend(ProcessBackend):
    name = "binary"
    bind_host = "0.0.0.0"  # tensorflow_model_server listens on all interfaces

    def __init__(self, spec: ServerSpec, binary_path: str = DEFAULT_BINARY) -> None:
        super().__init__(spec)
        resolved = resolve_binary(binary_path)
        if resolved is None:
            raise BackendUnavailableError(
                f"{binary_path} was not found (not on PATH or not executable); install "
                "tensorflow_model_server, set server.binary_path, or use another backend"
            )
        self.binary = resolved

    def build_command(
        self, batching_file: Path | None, server_flags: Mapping[str, str], workdir: Path
    ) -> list[str]:
        monitoring_file = write_monitoring_config(workdir)
        return command_line(self.binary, self.spec, batching_file, monitoring_file, server_flags)

    def after_ready(self) -> None:
        url = f"{self.rest_url}/v1/models/{self.spec.model_name}"
        if not rest_answers(url, REST_CHECK_TIMEOUT_S):
            raise PortConflictError(
                f"the model server is AVAILABLE over gRPC but its REST port "
                f"{self.spec.rest_port} does not answer (tensorflow_model_server only logs a "
                "failed REST bind); free the port or choose another server.rest_port",
                port=self.spec.rest_port,
                log_tail=self.log_tail(),
            )

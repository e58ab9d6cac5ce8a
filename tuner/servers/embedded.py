"""The embedded backend: our TF Serving-compatible `python -m model_server`, each trial's
server forked by one launcher that imported TensorFlow once (tuner/servers/launcher.py)."""

from __future__ import annotations

import logging
import os
import shlex
import sys
from collections.abc import Mapping
from pathlib import Path

from tuner.process import Child, child_env
from tuner.servers.base import ServerSpec
from tuner.servers.flags import model_server_flags
from tuner.servers.launcher import LauncherError, ServerLauncher
from tuner.servers.process import ProcessBackend

log = logging.getLogger("tuner")

LAUNCHER_LOG = "model_server_launcher.log"
# "0": exec `python -m model_server` for every start, as before the launcher (the benchmark's
# "before", or a way round a launcher that misbehaves somewhere)
LAUNCHER_ENV = "TUNER_SERVER_LAUNCHER"


def command_line(
    spec: ServerSpec, batching_file: Path | None, server_flags: Mapping[str, str]
) -> list[str]:
    """The same flags the real binary gets, plus the embedded-only --bind_address."""
    return [
        sys.executable,
        "-m",
        "model_server",
        *model_server_flags(
            grpc_port=spec.grpc_port,
            rest_port=spec.rest_port,
            model_name=spec.model_name,
            model_base_path=spec.model_base_path,
            batching_file=batching_file,
            server_flags=server_flags,
            extra_flags=spec.extra_flags,
        ),
        f"--bind_address={spec.host}",
    ]


class EmbeddedBackend(ProcessBackend):
    name = "embedded"

    def __init__(self, spec: ServerSpec) -> None:
        super().__init__(spec)
        self.bind_host = spec.host
        self._launcher: ServerLauncher | None = None
        self._launcher_failed = os.environ.get(LAUNCHER_ENV, "1") == "0"

    def build_command(
        self, batching_file: Path | None, server_flags: Mapping[str, str], workdir: Path
    ) -> list[str]:
        return command_line(self.spec, batching_file, server_flags)

    def launch(self, cmd: list[str], log_path: Path) -> Child:
        launcher = self._running_launcher(log_path.parent / LAUNCHER_LOG)
        if launcher is None:
            return super().launch(cmd, log_path)
        with log_path.open("ab") as output:
            output.write(f"# {shlex.join(cmd)} (forked by launcher pid {launcher.pid})\n".encode())
        cpus = self.spec.cpus.cpus if self.spec.cpus is not None else None
        try:
            server = launcher.fork(cmd, log_path, child_env(), cpus)
        except LauncherError as exc:
            self._give_up(str(exc))
            return super().launch(cmd, log_path)
        return Child("server", server, log_path, f"backend={self.name}")

    def stop(self) -> None:
        """The server, then the launcher: a restart keeps the launcher, a stop leaves nothing
        running."""
        self.stop_server()
        self._close_launcher()

    def _close_launcher(self) -> None:
        launcher, self._launcher = self._launcher, None
        if launcher is not None:
            launcher.close()

    def _running_launcher(self, log_path: Path) -> ServerLauncher | None:
        if self._launcher_failed:
            return None
        if self._launcher is not None and self._launcher.alive:
            return self._launcher
        self._close_launcher()
        launcher = ServerLauncher(log_path, self.spec.ready_timeout_s)
        try:
            launcher.start()
        except (LauncherError, OSError) as exc:
            self._give_up(str(exc))
            return None
        self._launcher = launcher
        return launcher

    def _give_up(self, why: str) -> None:
        """Said once; every later start of this run execs the server."""
        log.warning("event=launcher_unavailable reason=%r", why)
        self._launcher_failed = True
        self._close_launcher()

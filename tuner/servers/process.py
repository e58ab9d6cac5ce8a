"""Backends that run the model server as a local process (embedded and binary).

Starting and stopping the process is tuner/process.py's (a session of its own, SIGTERM, a
bounded wait, then SIGKILL to the whole process group); what is the server's own is here: its
command line, its ports checked free, waiting for AVAILABLE.
"""

from __future__ import annotations

import logging
import shlex
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path

import psutil

from model_server.batching_parameters import BatchingParameters
from tuner.process import Child, log_tail, spawn
from tuner.servers.base import (
    ModelServerBackend,
)
from tuner.servers.flags import write_batching_file
from tuner.servers.ports import check_ports_free

log = logging.getLogger(__name__)

LOG_FILE = "server.log"


class ProcessBackend(ModelServerBackend):
    """Launch a command, wait for AVAILABLE, stop with a bounded wait then SIGKILL."""

    bind_host = "127.0.0.1"  # where the port check binds: as the server itself binds

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._child: Child | None = None
        self._log_path: Path | None = None

    @abstractmethod
    def build_command(
        self, batching_file: Path | None, server_flags: Mapping[str, str], workdir: Path
    ) -> list[str]:
        """The command line for this trial (may write config files into workdir)."""

    def after_ready(self) -> None:
        """Checks once the model is AVAILABLE; raise (the server is then stopped) on failure."""

    def start(
        self,
        batching: BatchingParameters | None,
        server_flags: Mapping[str, str],
        workdir: Path,
    ) -> None:
        self.stop_server()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        batching_file = write_batching_file(workdir, batching)
        cmd = self.build_command(batching_file, self.spec.with_cpu_flags(server_flags), workdir)
        check_ports_free(self.spec, self.bind_host)
        self._log_path = workdir / LOG_FILE
        log.info("event=server_start backend=%s cmd=%s", self.name, shlex.join(cmd))
        self._child = self.launch(cmd, self._log_path)
        try:
            self._wait_ready()
            self.after_ready()
        except BaseException:
            self.stop()
            raise
        log.info("event=server_ready backend=%s pid=%d", self.name, self._child.pid)

    def launch(self, cmd: list[str], log_path: Path) -> Child:
        """The server's process, its output appended to `log_path` after its command line."""
        return spawn(
            "server",
            cmd,
            log_path,
            header=f"# {shlex.join(cmd)}\n",
            cpus=self.spec.cpus.cpus if self.spec.cpus is not None else None,
            fields=f"backend={self.name}",
        )

    def _wait_ready(self) -> None:
        assert self._child is not None
        self._wait_available(self._child.proc, subject="model server", stopped="server was stopped")

    def stop_server(self) -> None:
        child, self._child = self._child, None
        if child is not None:
            child.stop(self.spec.stop_timeout_s)

    def stop(self) -> None:
        self.stop_server()

    def is_running(self) -> bool:
        return self._child is not None and self._child.poll() is None

    def exit_code(self) -> int | None:
        return self._child.poll() if self._child is not None else None

    @property
    def pids(self) -> list[int]:
        if not self.is_running():
            return []
        assert self._child is not None
        try:
            children = psutil.Process(self._child.pid).children(recursive=True)
        except psutil.Error:
            children = []
        return [self._child.pid, *(child.pid for child in children)]

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self._log_path, lines)

"""Backends that run the model server as a local process (embedded and binary).

The process gets its own session, so a Ctrl-C in the tuner's terminal reaches the tuner
only and the tuner stops the server in order; stopping is SIGTERM, a bounded wait, then
SIGKILL to the whole process group.
"""

from __future__ import annotations

import logging
import shlex
import subprocess
from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import IO

import psutil

from model_server.batching_parameters import BatchingParameters
from tuner.process import log_tail, start_in_new_session, stop_group
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
        self._proc: subprocess.Popen | None = None
        self._log_file: IO[bytes] | None = None
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
        self.stop()
        workdir = Path(workdir)
        workdir.mkdir(parents=True, exist_ok=True)
        batching_file = write_batching_file(workdir, batching)
        cmd = self.build_command(batching_file, self.spec.with_cpu_flags(server_flags), workdir)
        check_ports_free(self.spec, self.bind_host)
        self._log_path = workdir / LOG_FILE
        self._log_file = self._log_path.open("ab")
        self._log_file.write(f"# {shlex.join(cmd)}\n".encode())
        self._log_file.flush()
        log.info("event=server_start backend=%s cmd=%s", self.name, shlex.join(cmd))
        cpus = self.spec.cpus.cpus if self.spec.cpus is not None else None
        self._proc = start_in_new_session(cmd, self._log_file, cpus=cpus)
        try:
            self._wait_ready()
            self.after_ready()
        except BaseException:
            self.stop()
            raise
        log.info("event=server_ready backend=%s pid=%d", self.name, self._proc.pid)

    def _wait_ready(self) -> None:
        assert self._proc is not None
        self._wait_available(self._proc, subject="model server", stopped="server was stopped")

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            code = stop_group(proc, self.spec.stop_timeout_s, f"server_kill backend={self.name}")
            log.info("event=server_stop backend=%s exit_code=%s", self.name, code)
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None

    def is_running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc is not None else None

    @property
    def pids(self) -> list[int]:
        if not self.is_running():
            return []
        assert self._proc is not None
        try:
            children = psutil.Process(self._proc.pid).children(recursive=True)
        except psutil.Error:
            children = []
        return [self._proc.pid, *(child.pid for child in children)]

    @property
    def log_path(self) -> Path | None:
        return self._log_path

    def log_tail(self, lines: int = 30) -> str:
        if self._log_file is not None:
            self._log_file.flush()
        return log_tail(self._log_path, lines)

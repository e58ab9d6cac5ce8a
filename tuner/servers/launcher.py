"""The tuner's side of the model server's launcher (model_server/launcher.py): one launcher
per run of the embedded backend, started at its first server, forking every trial's server
from a process that imported TensorFlow once.

A forked server is the launcher's child, not ours, so `ForkedServer` gives it the part of
`subprocess.Popen` that tuner/process.py's stop rules use: `poll` and `wait` read the exit
codes the launcher reports, `send_signal` signals the pid. Its process group is its own (the
launcher calls setsid), so the stop rules' SIGCONT and SIGKILL to the group work as for any
child. A launcher that cannot start (TensorFlow missing, an import failing) is said once in
the log and the backend execs `python -m model_server` instead, whose own error then reaches
the user as before.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import shlex
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import psutil

from tuner.process import Proc, start_with_pipes, stop_group

log = logging.getLogger("tuner")

# Room in the launcher's command line for each server's title: its own command line, which
# `ps` then shows as an exec'd server's (model_server/launcher.py).
TITLE_ROOM = 4096
COMMAND = [sys.executable, "-m", "model_server.launcher", "--title-room=" + "_" * TITLE_ROOM]
REPLY_TIMEOUT_S = 10.0
CLOSE_TIMEOUT_S = 15.0  # its servers get STOP_GRACE_S (10 s) to exit
# A server whose launcher was killed: its exit code went with the launcher. Not 255, the
# server's own "cannot start" (model_server/flags.py), and logged as lost where it is read.
LOST_EXIT_CODE = 254
POLL_S = 0.05


class LauncherError(RuntimeError):
    """The launcher is gone or did not answer: the caller execs the server instead."""


class ServerLauncher:
    """Start with `start()`, fork servers with `fork()`, end with `close()`."""

    def __init__(self, log_path: Path, ready_timeout_s: float) -> None:
        self.log_path = log_path
        self.ready_timeout_s = ready_timeout_s
        self._proc: subprocess.Popen | None = None
        self._replies: queue.Queue[dict] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._changed = threading.Condition()
        self._gone = False
        self._lock = threading.Lock()
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        """Until the launcher has imported TensorFlow; LauncherError if it cannot."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as errors:
            self._proc = start_with_pipes(COMMAND, errors)
        self._reader = threading.Thread(target=self._read, name="launcher-reader", daemon=True)
        self._reader.start()
        try:
            reply = self._replies.get(timeout=self.ready_timeout_s)
        except queue.Empty:
            reply = {}
        if "ready" not in reply:
            self.close()
            raise LauncherError(
                f"the model server's launcher did not start within {self.ready_timeout_s:g} s "
                f"(log: {self.log_path})"
            )

    @property
    def alive(self) -> bool:
        return self._proc is not None and not self._gone

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def fork(
        self,
        cmd: Sequence[str],
        log_path: Path,
        env: Mapping[str, str],
        cpus: Sequence[int] | None = None,
        cwd: Path | None = None,
    ) -> ForkedServer:
        """The server `cmd` (`python -m model_server` and its flags) would start, its output
        appended to `log_path`."""
        request = {
            "argv": list(cmd[3:]),
            "title": shlex.join(cmd),
            "env": dict(env),
            "log": str(log_path),
            "cpus": list(cpus) if cpus else None,
            "cwd": str(cwd) if cwd else None,
        }
        with self._lock:
            if not self.alive:
                raise LauncherError("the model server's launcher has exited")
            assert self._proc is not None and self._proc.stdin is not None
            try:
                self._proc.stdin.write((json.dumps(request) + "\n").encode())
                self._proc.stdin.flush()
                reply = self._replies.get(timeout=REPLY_TIMEOUT_S)
            except (OSError, queue.Empty) as exc:
                raise LauncherError(f"the model server's launcher did not answer: {exc}") from None
        if "started" not in reply:
            raise LauncherError(f"the model server's launcher could not fork: {reply}")
        return ForkedServer(self, reply["started"])

    def exit_code(self, pid: int) -> int | None:
        with self._changed:
            if pid in self._exits:
                return self._exits[pid]
            if not self._gone:
                return None
        if _running(pid):
            return None
        log.warning("event=server_exit_code_lost pid=%d reason=launcher_gone", pid)
        return LOST_EXIT_CODE

    def wait_exit(self, pid: int, timeout: float | None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            code = self.exit_code(pid)
            if code is not None:
                return code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(["model_server", str(pid)], timeout or 0.0)
            with self._changed:
                self._changed.wait(timeout=POLL_S if left is None else min(POLL_S, left))

    def close(self) -> None:
        """Closing its stdin tells the launcher to stop any server left and exit; a launcher
        that does not is stopped like any child."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=CLOSE_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            stop_group(proc, 0, "launcher_kill")
        if self._reader is not None:
            self._reader.join(timeout=REPLY_TIMEOUT_S)

    def _read(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if "exited" in message:
                with self._changed:
                    self._exits[message["exited"]] = message["code"]
                    self._changed.notify_all()
            else:
                self._replies.put(message)
        proc.stdout.close()
        with self._changed:
            self._gone = True
            self._changed.notify_all()
        self._replies.put({})
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = proc.wait(timeout=CLOSE_TIMEOUT_S)
            if code != 0:
                log.warning("event=launcher_exit exit_code=%s log=%s", code, self.log_path)


def _running(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


class ForkedServer(Proc):
    """A server the launcher forked, as the stop rules see a `subprocess.Popen`."""

    def __init__(self, launcher: ServerLauncher, pid: int) -> None:
        self._launcher = launcher
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._launcher.exit_code(self.pid)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.returncode = self._launcher.wait_exit(self.pid, timeout)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

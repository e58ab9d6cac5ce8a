"""The processes the tuner runs (model server, service, Locust): started alike, stopped alike.

Each starts in a session (and process group) of its own, so a Ctrl-C in the tuner's terminal
reaches the tuner only and the tuner stops them in order. Stopping is SIGTERM (a clean exit:
logs flushed, Locust's CSVs written), a bounded wait, then SIGKILL to the whole group, so the
children a process started (uvicorn's or Locust's workers) never outlive it, even when it
hangs. Processes found by `tuner/coordination/leftovers.py` are not our children: `stop_processes`
stops them the same way through psutil.

The interface: `spawn` starts a role's process (its command, log file, environment, CPUs) and
returns a `Child`; `Child.stop` stops it and logs `event=<role>_kill` when the wait ran out and
`event=<role>_stop` with its exit code; `Child.reap` takes back one found dead. The role
modules (tuner/servers/process.py, tuner/measure/service_process.py,
tuner/load/locust_process.py) keep only what is theirs: command lines, readiness, Locust's
protocol. `start_in_new_session` and `stop_group` are the two steps `spawn` and `Child` are made
of, for a caller that holds a bare `Popen`. `start_in_our_group` is the one exception to a
session of its own: `tuner load-worker`'s Locust, which must end with the command that runs it.
No other module of the package starts a process (tests/tuner/test_spawn_and_stop.py checks).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import socket
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import psutil

log = logging.getLogger("tuner")


class Proc(Protocol):
    """What the stop rules need of a process: a `subprocess.Popen`, or a model server the
    launcher forked (tuner/servers/launcher.py), whose parent is the launcher, not us."""

    pid: int
    returncode: int | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...


def child_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A child's environment: `env`, or ours with unbuffered Python output, so a log tail is up
    to date when it is read."""
    return dict(env) if env is not None else {**os.environ, "PYTHONUNBUFFERED": "1"}


def start_in_new_session(
    cmd: Sequence[str],
    output: IO[bytes],
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: Sequence[int] | None = None,
) -> subprocess.Popen:
    """`cmd` with stdout and stderr into `output`, no stdin, in a new session, with the
    environment `child_env(env)` gives.
    `cpus`: its CPU affinity, set in the child before it executes, so every thread it ever
    starts inherits it."""
    return subprocess.Popen(
        list(cmd),
        stdout=output,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=cwd,
        env=child_env(env),
        start_new_session=True,
        preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None,
    )


def start_with_pipes(
    cmd: Sequence[str], errors: IO[bytes], env: Mapping[str, str] | None = None
) -> subprocess.Popen:
    """`cmd` in a new session, as `start_in_new_session`, talking over its stdin and stdout
    (pipes) and writing its stderr to `errors`: the model server's launcher
    (model_server/launcher.py), which takes requests and answers on them."""
    return subprocess.Popen(
        list(cmd),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        env=child_env(env),
        start_new_session=True,
    )


def start_in_our_group(
    cmd: Sequence[str], output: IO[bytes], env: Mapping[str, str]
) -> subprocess.Popen:
    """`cmd` with stdout and stderr into `output`, no stdin, in our own process group: a
    Ctrl-C in the terminal, or a kill of the group, ends it with us. Stop it with `stop_child`,
    never `stop_group`, which would signal us too."""
    return subprocess.Popen(
        list(cmd), stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
    )


def stop_group(proc: Proc, timeout_s: float, kill_event: str) -> int | None:
    """SIGTERM, up to `timeout_s` for it to exit, then SIGKILL to its whole process group
    (whatever it left behind goes too); returns the exit code. `kill_event` names the log
    line written when the wait ran out (e.g. "server_kill backend=binary")."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        # A stopped (SIGSTOPped, hung) group would hold the SIGTERM until the wait runs out.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGCONT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            log.warning(
                "event=%s pid=%d reason=no_exit_after_sigterm waited_s=%g",
                kill_event,
                proc.pid,
                timeout_s,
            )
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


@dataclass
class Child:
    """A process `spawn` started for `role` ("server", "service", "load"), writing to
    `log_path`; `fields` ("backend=binary") go into every event logged about it."""

    role: str
    proc: Proc
    log_path: Path
    fields: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def poll(self) -> int | None:
        """Its exit code once it has exited; None while it runs."""
        return self.proc.poll()

    def stop(self, timeout_s: float) -> int | None:
        """SIGTERM, up to `timeout_s`, then SIGKILL to its whole group (see `stop_group`); logs
        `event=<role>_stop` and returns the exit code."""
        code = stop_group(self.proc, timeout_s, self._event("kill"))
        log.info("event=%s exit_code=%s", self._event("stop"), code)
        return code

    def reap(self) -> int | None:
        """For one found dead: SIGKILL to whatever its group left (workers), then its exit
        code; logs nothing, the caller says what it does next."""
        return stop_group(self.proc, 0, self._event("kill"))

    def log_tail(self, lines: int = 30) -> str:
        return log_tail(self.log_path, lines)

    def _event(self, what: str) -> str:
        return f"{self.role}_{what}" + (f" {self.fields}" if self.fields else "")


def spawn(
    role: str,
    cmd: Sequence[str],
    log_path: Path,
    *,
    append: bool = True,
    header: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    cpus: Sequence[int] | None = None,
    fields: str = "",
) -> Child:
    """`cmd` in a session of its own (see `start_in_new_session`), its output appended to
    `log_path` (or replacing it: `append=False`) after `header`, if any. The log is ours to
    open and close: the child writes through its own descriptor."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab" if append else "wb") as output:
        if header is not None:
            output.write(header.encode())
            output.flush()
        proc = start_in_new_session(cmd, output, env=env, cwd=cwd, cpus=cpus)
    return Child(role, proc, log_path, fields)


def stop_child(proc: subprocess.Popen, timeout_s: float) -> int | None:
    """SIGTERM, up to `timeout_s` for it to exit, then SIGKILL to it alone; returns the exit
    code. For a child that shares our process group, which `stop_group` must not signal."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def stop_processes(processes: list[psutil.Process], timeout_s: float) -> None:
    """SIGTERM each, up to `timeout_s` for all to exit, then SIGKILL the rest."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.terminate()
    _, alive = psutil.wait_procs(processes, timeout=timeout_s)
    for process in alive:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(alive, timeout=timeout_s)


def log_tail(path: Path | None, lines: int = 30) -> str:
    """The last `lines` lines of a log; "" when there is none (yet)."""
    if path is None:
        return ""
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
BELOW_EPHEMERAL = 16384  # how many ports under the ephemeral range a pick draws from
PICK_ATTEMPTS = 20
# From the OS, not the `random` module's state: a process that seeded it (a model build does)
# would draw the same ports as every other process seeded alike.
_PICKER = random.SystemRandom()


def ephemeral_range() -> tuple[int, int] | None:
    """The kernel's range for the local ports of outgoing connections (Linux), else None."""
    try:
        low, high = (int(v) for v in EPHEMERAL_RANGE_FILE.read_text().split())
    except (OSError, ValueError):
        return None
    return low, high


def free_port(host: str = "127.0.0.1") -> int:
    """A port that was free on `host` a moment ago, for a server of ours to listen on.

    Drawn below the kernel's ephemeral range: every outgoing connection takes its local port
    from that range, so a port the kernel picks there (bind to port 0) can be taken by any
    client connecting anywhere before our server binds it (the suite, which opens thousands
    of connections, saw a model server fail its start that way). Where the range leaves no
    room below it, or no port drawn there is free, the kernel picks."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    span = ephemeral_range()
    if span is not None and span[0] > 1024 + 1:
        low = max(1024, span[0] - BELOW_EPHEMERAL)
        for _ in range(PICK_ATTEMPTS):
            port = _PICKER.randrange(low, span[0])
            with socket.socket(family, socket.SOCK_STREAM) as sock:
                try:
                    sock.bind((host, port))
                except OSError:
                    continue
                return port
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]

"""The prediction service for a study: started once (or the user's own), stopped at the end.

The service keeps one gRPC channel to the model server for the whole study and reconnects
by itself after each restart, as it would in production; between trials the tuner waits
for its /readyz to turn green rather than restarting it.
"""

from __future__ import annotations

import importlib.util
import logging
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx

from tuner.config import TunerConfig
from tuner.errors import ConfigError, TrialFailed, TunerError
from tuner.process import Child, free_port, log_tail, spawn

log = logging.getLogger("tuner")


class ServiceProcess:
    """A service the tuner runs (`command`), or one the user runs (`url` only)."""

    def __init__(
        self,
        url: str,
        command: list[str] | None,
        log_path: Path,
        command_for: Callable[[str], list[str]] | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.command = command
        self.log_path = log_path
        # the command for another model-server address (its ports moved): see point_at
        self.command_for = command_for
        self.process: Child | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def start(self, timeout_s: float) -> None:
        if self.command is not None:
            # A session of its own: Ctrl-C reaches the tuner, which stops it in order.
            self.process = spawn("service", self.command, self.log_path)
            log.info("event=service_start pid=%d url=%s", self.process.pid, self.url)
        self._wait("/healthz", timeout_s)

    def exit_code(self) -> int | None:
        """The exit code of the service the tuner runs once it has died; None while it runs
        (and always for a service the user runs, which the tuner cannot see)."""
        return self.process.poll() if self.process is not None else None

    def answers(self, timeout_s: float = 2.0) -> bool:
        """Whether /healthz answers at all: for a service the user runs, the only sign of life."""
        try:
            httpx.get(self.url + "/healthz", timeout=timeout_s)
        except httpx.HTTPError:
            return False
        return True

    def ensure_running(self, timeout_s: float) -> int | None:
        """Start the tuner's service again if it died (what it left behind is killed first,
        the port is the same); returns the dead one's exit code, None when it was running."""
        proc = self.process
        if self.command is None or proc is None or proc.poll() is None:
            return None
        code = proc.reap()  # its workers, should any be left
        log.warning("event=service_restart exit_code=%s url=%s", code, self.url)
        self.start(timeout_s)
        return code

    def _wait(self, path: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while True:
            code = self.process.poll() if self.process is not None else None
            if code is not None:
                last_line = log_tail(self.log_path, 1).strip() or "(empty log)"
                raise TunerError(
                    f"the prediction service exited with code {code} "
                    f"while starting ({last_line}); see {self.log_path} and fix service.command "
                    "or service.port"
                )
            try:
                response = httpx.get(self.url + path, timeout=2.0)
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}"
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            if time.monotonic() >= deadline:
                raise TunerError(
                    f"the prediction service at {self.url} did not answer {path} within "
                    f"{timeout_s:g} s ({last}); check service.url / service.command"
                )
            time.sleep(0.2)

    def point_at(self, grpc_target: str, timeout_s: float) -> None:
        """Restart, on the same port, talking to the model server at `grpc_target`: its
        ports moved (tuner/measure/server_start.py). A service the user runs is left alone: its
        model server's ports are configured, and those never move."""
        if self.command_for is None or self.command is None:
            return
        self.stop()
        self.command = self.command_for(grpc_target)
        log.warning("event=service_restart grpc_target=%s", grpc_target)
        self.start(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        """Until /readyz says the model server is reachable and AVAILABLE (after a restart)."""
        try:
            self._wait("/readyz", timeout_s)
        except TunerError as exc:
            raise TrialFailed("service_not_ready", str(exc)) from None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM, a bounded wait, then SIGKILL to its process group: with workers > 1 a
        service that does not stop in time must not leave its workers running."""
        proc = self.process
        if proc is None or proc.poll() is not None:
            return
        proc.stop(timeout_s)


PLACEHOLDERS = ("host", "port", "grpc_target", "model_name", "model_base_path", "workers", "python")


def expand_command(command: str | list[str], values: dict[str, str]) -> list[str]:
    """A user's service command with {port}, {grpc_target}, ... filled in: the tuner picks
    the ports, so the command has to learn them from it. ValueError names a bad placeholder."""
    parts = shlex.split(command) if isinstance(command, str) else list(command)
    expanded = []
    for part in parts:
        try:
            expanded.append(part.format_map(values))
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"has a bad placeholder in {part!r} ({exc}); use only "
                + ", ".join(f"{{{name}}}" for name in PLACEHOLDERS)
            ) from None
    return expanded


NO_SERVICE_CLIENT = (
    "the prediction service the tuner starts (python -m service) calls the model server with "
    "TF Serving's client, which the base install leaves out: pip install "
    "'tfserving-batching-tuner[embedded]', or give service.url or service.command for yours"
)


def default_command(values: dict[str, str]) -> list[str]:
    """`python -m service` wired to the study's model server."""
    return expand_command(
        [
            "{python}",
            "-m",
            "service",
            "--host",
            "{host}",
            "--port",
            "{port}",
            "--model-server",
            "{grpc_target}",
            "--model-name",
            "{model_name}",
            "--model-base-path",
            "{model_base_path}",
            "--workers",
            "{workers}",
            "--access-log",
            "off",
        ],
        values,
    )


def service_for(
    config: TunerConfig, grpc_target: str, model_base_path: Path, workdir: Path
) -> ServiceProcess:
    """The study's service: the user's URL, the user's command, or `python -m service`."""
    if config.service.url:
        return ServiceProcess(config.service.url, None, workdir / "service.log")
    host = config.service.host
    port = config.service.port or free_port(host)
    values = {
        "host": host,
        "port": str(port),
        "model_name": config.server.model_name,
        "model_base_path": str(model_base_path),
        "workers": str(config.service.workers),
        "python": sys.executable,
    }
    if not config.service.command and importlib.util.find_spec("tensorflow_serving") is None:
        raise ConfigError(NO_SERVICE_CLIENT)

    def command_for(target: str) -> list[str]:
        with_target = {**values, "grpc_target": target}
        if config.service.command:
            return expand_command(config.service.command, with_target)
        return default_command(with_target)

    try:
        command = command_for(grpc_target)
    except ValueError as exc:
        raise ConfigError(f"{config.source}: service.command {exc}") from None
    address = f"[{host}]" if ":" in host else host
    return ServiceProcess(
        f"http://{address}:{port}", command, workdir / "service.log", command_for=command_for
    )

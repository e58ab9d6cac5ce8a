"""The Locust subprocess: its command line, environment, and a stop that always works.

Pure construction (tests check the command line as is) plus the bounded termination the
runner uses on every path out.
"""

from __future__ import annotations

import hashlib
import math
import os
import socket
import sys
from pathlib import Path

from tuner.load.request_set import fingerprint as requests_fingerprint
from tuner.load.spec import LoadGeneratorError, LoadProfile
from tuner.process import free_port, log_tail, spawn

DEFAULT_LOCUSTFILE = Path(__file__).with_name("locustfile.py")
REPORTER = Path(__file__).with_name("interval_reporter.py")
STOP_TIMEOUT_S = 1  # Locust's --stop-timeout: in-flight requests after the window don't count
_REPO_ROOT = Path(__file__).resolve().parents[2]


# Locust's own -t is a safety net: the tuner stops Locust once the window is complete, so it
# must never end a run first. In CI on a loaded machine a 4 s limit quit 0.75 s after Locust set
# it, before any interval was written: gevent's libev loop times a timer from its cached time,
# which before the loop's first run is the moment it was created (seen by hand: after 3 s of
# blocking, spawn_later(4) fired after 1.00 s), so a slow start-up shortens the limit by as
# much. The slack leaves the start-up's room too.
RUN_TIME_SLACK_S = 30.0


def run_time_s(profile: LoadProfile) -> int:
    """Locust's own bound (-t): the window, a margin for the last interval to arrive, and the
    slack of a timer started from a stale loop time."""
    margin = max(2.0, 2 * profile.interval_s) + RUN_TIME_SLACK_S
    return math.ceil(profile.warmup_s + profile.measure_s + margin)


def locust_command(
    profile: LoadProfile, target_url: str, workdir: Path, *, master_port: int | None = None
) -> list[str]:
    """The Locust command line for `profile` (pure: tests check it as is).

    Open loop: one user (the arrival scheduler) per process, and no --run-time: the session
    lasts as many steps as the tuner asks for, and the tuner stops it (or its watchdog does).
    """
    locustfile = Path(profile.locustfile or DEFAULT_LOCUSTFILE).resolve()
    if profile.open_loop:
        n = str(profile.schedulers)
        users = ["--users", n, "--spawn-rate", n]
    else:
        users = [
            "--users",
            str(profile.users),
            "--spawn-rate",
            f"{profile.spawn_rate:g}",
            "--run-time",
            f"{run_time_s(profile)}s",
        ]
    cmd = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{locustfile},{REPORTER}",
        "--headless",
        "--host",
        target_url,
        *users,
        "--stop-timeout",
        str(STOP_TIMEOUT_S),
        "--csv",
        str(workdir / "locust"),
        "--only-summary",
        # Rejections under overload are measurements, not a failed load generator.
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "INFO",
    ]
    if profile.workers:
        cmd += [
            "--master",
            "--expect-workers",
            str(profile.workers),
            "--master-bind-host",
            profile.master_bind_host,
            "--master-bind-port",
            str(profile.master_bind_port),
        ]
    elif profile.processes > 1:
        if master_port is None:
            raise ValueError("master_port is required when processes > 1")
        cmd += [
            "--processes",
            str(profile.processes),
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            str(master_port),
            "--master-port",
            str(master_port),
        ]
    return cmd


def locust_env(
    profile: LoadProfile, intervals_file: Path | None, control_file: Path | None = None
) -> dict[str, str]:
    """The settings our plugin and locustfile read; the same on the tuner's host and on a
    load-worker's (which has no interval or control file: it talks to the master)."""
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env.update(
        PYTHONUNBUFFERED="1",
        PYTHONPATH=f"{_REPO_ROOT}{os.pathsep}{path}" if path else str(_REPO_ROOT),
        TUNER_LOAD_INTERVAL_S=repr(profile.interval_s),
        TUNER_LOAD_TEXTS_PER_REQUEST=str(profile.texts_per_request),
        TUNER_LOAD_REQUEST_TIMEOUT_S=repr(profile.request_timeout_s),
        TUNER_LOAD_ARRIVAL=profile.arrival,
        TUNER_LOAD_PROCESSES=str(profile.schedulers),
        TUNER_LOAD_MAX_IN_FLIGHT=str(profile.max_in_flight),
        TUNER_LOAD_WORKERS=str(profile.workers),
        TUNER_LOAD_FINGERPRINT=fingerprint(profile),
        TUNER_LOAD_PARENT_PID=str(os.getpid()),
    )
    if profile.requests_file is not None:
        env["TUNER_LOAD_REQUESTS_FILE"] = str(profile.requests_file)
        env["TUNER_LOAD_REQUESTS_ORDER"] = profile.requests_order
        env["TUNER_LOAD_PREDICT_PATH"] = profile.predict_path
    env["TUNER_LOAD_TARGET"] = profile.target
    if profile.grpc_requests_file is not None:
        env["TUNER_LOAD_GRPC_REQUESTS_FILE"] = str(profile.grpc_requests_file)
    if intervals_file is not None:
        env["TUNER_LOAD_INTERVALS_FILE"] = str(intervals_file)
    if control_file is not None:
        env["TUNER_LOAD_CONTROL_FILE"] = str(control_file)
    return env


def fingerprint(profile: LoadProfile) -> str:
    """What a remote worker must share with the tuner to measure the same thing: how the
    rate and ceiling are split, the interval grid, the requests (the locustfile's bytes)."""
    locustfile = Path(profile.locustfile or DEFAULT_LOCUSTFILE)
    try:
        code = hashlib.sha256(locustfile.read_bytes()).hexdigest()[:12]
    except OSError:
        code = "missing"
    return (
        f"workers={profile.workers} max_in_flight={profile.max_in_flight} "
        f"interval_s={profile.interval_s:g} texts_per_request={profile.texts_per_request} "
        f"request_timeout_s={profile.request_timeout_s:g} locustfile={code}"
        f"{_requests_fingerprint(profile)}"
    )


def _requests_fingerprint(profile: LoadProfile) -> str:
    """The request bodies' hash, which a load-worker computes from the bytes the master
    sent it (request_set.py), so a worker that did not get them is refused."""
    if profile.requests_file is None:
        return ""
    try:
        data: bytes | None = Path(profile.requests_file).read_bytes()
    except OSError:
        data = None
    return requests_fingerprint(data, profile.requests_order, profile.predict_path, profile.target)


def master_address(profile: LoadProfile) -> str:
    """HOST:PORT for `load-worker --master` (a wildcard bind means: the tuner host's name)."""
    host = profile.master_bind_host
    if host in ("0.0.0.0", "::", "*"):
        host = "TUNER_HOST"
    return f"{host}:{profile.master_bind_port}"


def worker_hint(profile: LoadProfile) -> str:
    return (
        f"start `python -m tuner load-worker --master {master_address(profile)} --config "
        "tuner.toml` (the same config and locustfile as the tuner's) on each load host"
    )


def check_master_port(profile: LoadProfile) -> None:
    """A taken port would make Locust's master exit with a ZeroMQ traceback; say it first."""
    host, port = profile.master_bind_host, profile.master_bind_port
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise LoadGeneratorError(
                f"the Locust master cannot listen on {host}:{port} ({exc.strerror}); free "
                "that port or set load.master_bind_host / load.master_bind_port"
            ) from None


def worker_command(profile: LoadProfile, master_host: str, master_port: int) -> list[str]:
    """`locust --worker` for a load host: the tuner's locustfile and our plugin."""
    locustfile = Path(profile.locustfile or DEFAULT_LOCUSTFILE).resolve()
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        f"{locustfile},{REPORTER}",
        "--worker",
        "--master-host",
        master_host,
        "--master-port",
        str(master_port),
        "--exit-code-on-error",
        "0",
        "--loglevel",
        "INFO",
    ]


ERROR_PREFIX = "tuner-load-error:"


def last_line(path: Path) -> str:
    """The line that explains a failed Locust: our plugin's own sentence, else the last."""
    tail = [line.strip() for line in log_tail(path, 30).splitlines() if line.strip()]
    ours = [line for line in tail if line.startswith(ERROR_PREFIX)]
    if ours:
        return ours[-1][len(ERROR_PREFIX) :].strip()
    return tail[-1] if tail else "(no output)"


class LocustRun:
    """One Locust subprocess (with its workers) writing the interval stream under `workdir`."""

    def __init__(
        self,
        profile: LoadProfile,
        target_url: str,
        workdir: Path,
        control_file: Path | None = None,
    ) -> None:
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        locustfile = Path(profile.locustfile or DEFAULT_LOCUSTFILE)
        if not locustfile.is_file():
            raise LoadGeneratorError(
                f"the locustfile {locustfile} does not exist; fix load.locustfile in the config"
            )
        self.intervals_path = self.workdir / "intervals.jsonl"
        self.log_path = self.workdir / "locust.log"
        self.intervals_path.unlink(missing_ok=True)
        if profile.workers:
            check_master_port(profile)
        master_port = free_port() if profile.processes > 1 and not profile.workers else None
        cmd = locust_command(profile, target_url, self.workdir, master_port=master_port)
        self.child = spawn(
            "load",
            cmd,
            self.log_path,
            append=False,
            env=locust_env(profile, self.intervals_path, control_file),
            cwd=self.workdir,
        )
        self.proc = self.child.proc

    @property
    def pid(self) -> int:
        return self.proc.pid

    def exited(self) -> bool:
        return self.proc.poll() is not None

    def error(self, what: str) -> LoadGeneratorError:
        return LoadGeneratorError(
            f"{what}: {last_line(self.log_path)} (log: {self.log_path})", log_tail(self.log_path)
        )

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def artifacts(self) -> list[Path]:
        names = ["locust.log", "intervals.jsonl"]
        names += [
            f"locust_{kind}.csv" for kind in ("stats", "stats_history", "failures", "exceptions")
        ]
        return [self.workdir / name for name in names if (self.workdir / name).exists()]

    def stop(self) -> None:
        """SIGTERM (Locust shuts down cleanly and writes its CSVs), a bounded wait, then
        SIGKILL to the whole group: with --processes the workers are Locust's children."""
        self.child.stop(STOP_TIMEOUT_S + 10.0)

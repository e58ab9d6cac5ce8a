"""`python -m tuner load-worker`: a Locust worker on a load host that outlives the trials.

Each trial runs its own Locust master (generator.py), and a Locust worker does not survive
its master: when the master quits it sends `quit` to every worker, which then shuts down
(`handle_message`, case "quit", in locust/runners.py of Locust 2.x), and a worker whose
master vanished without a word waits MASTER_HEARTBEAT_TIMEOUT (60 s) before quitting; a new
master on the same address does not adopt it (it only logs a heartbeat from an unknown
worker). So this command loops: it runs `locust --worker` against the master's address,
and whenever that process ends, starts a fresh one, which keeps announcing itself
(`client_ready`, every 5 s) until the next trial's master answers. Our plugin makes a
worker whose master fell silent for MASTER_SILENT_S quit early (distributed.py), so the
next trial never waits a minute for it.

The worker uses the tuner's config for everything that must match (the locustfile, the
interval, how the rate and the in-flight ceiling are split over `load.workers`, the
requests' shape); the tuner refuses a worker whose settings differ. The request bodies of
`load.requests` / `load.generate_rows` come from the master (distributed.py), so this host
needs neither the requests file nor the model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from tuner.coordination.worker_name import worker_name
from tuner.load.locust_process import last_line, locust_env, worker_command
from tuner.load.spec import LoadGeneratorError, LoadProfile, LoadProfileError
from tuner.process import start_in_our_group, stop_child

log = logging.getLogger(__name__)

RESTART_PAUSE_S = 1.0
FAST_EXIT_S = 5.0  # a worker that fails sooner than this, three times running, is broken
MAX_FAST_FAILURES = 3
STOP_TIMEOUT_S = 5.0


def parse_master(master: str) -> tuple[str, int]:
    """HOST:PORT (an IPv6 host in brackets) -> (host, port)."""
    host, sep, port = master.rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise LoadProfileError(
            f"--master must be the tuner host's HOST:PORT (load.master_bind_port, 5557 by "
            f"default), e.g. 10.0.0.5:5557, not {master!r}"
        )
    return host, int(port)


def serve(
    profile: LoadProfile,
    master: str,
    *,
    name: str | None = None,
    log_path: Path = Path("load-worker.log"),
    say: Callable[[str], None] = print,
    max_runs: int | None = None,
) -> None:
    """Run Locust workers for the master at `master`, one after another, until interrupted
    (or `max_runs` of them have ended). LoadGeneratorError when they keep failing at once."""
    if not profile.workers:
        raise LoadProfileError(
            "load.workers is 0 in this config, so the tuner starts no Locust master; set "
            "load.workers to the number of load-worker processes, in the same tuner.toml on "
            "every host"
        )
    locustfile = profile.locustfile
    if locustfile is not None and not Path(locustfile).is_file():
        raise LoadProfileError(
            f"the locustfile {locustfile} does not exist on this host; copy it here at the "
            "path load.locustfile names"
        )
    host, port = parse_master(master)
    name = worker_name(name or "")
    cmd = worker_command(profile, host, port)
    env = locust_env(profile, None)
    env.update(TUNER_LOAD_REMOTE="1", TUNER_LOAD_WORKER_NAME=name)
    log_path = Path(log_path)
    try:  # before any Locust starts: an unwritable log is the user's path, not a crash
        log_path.open("ab").close()
    except OSError as exc:
        raise LoadGeneratorError(
            f"cannot write the Locust log {log_path}: {exc.strerror or exc}; pass --log with a "
            "path you can write"
        ) from None
    failures = runs = 0
    while max_runs is None or runs < max_runs:
        runs += 1
        started = time.monotonic()
        with log_path.open("ab") as log_file:
            proc = start_in_our_group(cmd, log_file, env)
        say(f"event=load_worker_start run={runs} master={host}:{port} name={name} pid={proc.pid}")
        try:
            code = proc.wait()
        finally:  # SIGTERM first: the worker tells the master it quits
            stop_child(proc, STOP_TIMEOUT_S)
        lasted = time.monotonic() - started
        say(f"event=load_worker_exit run={runs} code={code} seconds={lasted:.1f}")
        failures = failures + 1 if code != 0 and lasted < FAST_EXIT_S else 0
        if failures >= MAX_FAST_FAILURES:
            raise LoadGeneratorError(
                f"the Locust worker exited with code {code} {failures} times in a row within "
                f"{FAST_EXIT_S:g} s: {last_line(log_path)} (log: {log_path})"
            )
        time.sleep(RESTART_PAUSE_S)

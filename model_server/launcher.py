"""`python -m model_server.launcher`: model servers forked from a process that has imported
TensorFlow once, so a restart does not import it again.

A tuner restarts the model server for every trial, and every `python -m model_server` spent
most of its start importing TensorFlow's runtime: on the 2-core machine of bench/RESULTS.md,
3.0 of the 4.1 CPU-seconds from exec to AVAILABLE (demo model). TF Serving itself is one C++
binary and pays nothing like it, so that time belonged to the stand-in, in every trial's
seconds and in the suite's. The launcher imports what `python -m model_server` would, once,
then forks one server per request: each starts where the import left off (1.3 CPU-s there,
bench/server_start_bench.py).

Each server is a new process in a session of its own, as an exec'd one is: it gets the
request's environment, working directory, CPU affinity and log file, then runs the same
`main()` with the same flags, and exits with its code. What the fork shares with the launcher
is the imported modules and nothing that runs: no thread of TensorFlow's exists before a model
loads (the import starts none), and the collector's objects are frozen before forking.

The protocol is JSON lines: the launcher writes {"ready": pid} once imported; then, for each
line {"argv", "env", "cwd", "log", "cpus", "title"} read on stdin it answers {"started": pid} (or
{"error": "..."}), and {"exited": pid, "code": c} when a server it forked ends (c negative: the
signal). When stdin closes (its tuner has gone), it stops the servers still running and exits.
"""

from __future__ import annotations

import contextlib
import gc
import io
import json
import os
import select
import signal
import sys
import time
import traceback

# (importing it sets TF_CPP_MIN_LOG_LEVEL before TensorFlow is imported, as a server's start does)
from model_server import __main__ as server_main
from model_server import bare_tensorflow

STOP_GRACE_S = 10.0


def _imported() -> None:
    """What a server's start imports before it reads its model: bare TensorFlow and the
    server's modules (model_server/__main__.py does the same, later)."""
    bare_tensorflow.install()
    import model_server.server  # noqa: F401
    from model_server import tensorflow_runtime  # noqa: F401

    gc.collect()
    gc.freeze()  # the forks' collectors never walk (and so never copy) the launcher's objects


def _say(message: dict) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def _child(request: dict, wakeup: tuple[int, int]) -> None:
    """In the forked process: become the server the request describes; never returns."""
    code = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for fd in wakeup:
            os.close(fd)
        os.setsid()
        if request.get("cpus"):
            os.sched_setaffinity(0, request["cpus"])
        if request.get("cwd"):
            os.chdir(request["cwd"])
        log = os.open(request["log"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(devnull)
        # unbuffered, as an exec'd server with PYTHONUNBUFFERED is: a log tail is current
        sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), write_through=True)
        sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), write_through=True)
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["model_server", *request["argv"]]
        if request.get("title"):
            _set_title(request["title"])
        code = server_main.main(request["argv"])
    except SystemExit as exc:  # argparse's way out of a bad flag
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if exc.code is not None and not isinstance(exc.code, int):
            print(exc.code, file=sys.stderr)
    except BaseException:
        traceback.print_exc()
    finally:
        server_main.exit_now(code)


def _set_title(title: str) -> None:
    """What `ps` and /proc/PID/cmdline show: the server's own command line, as if exec'd,
    written over the launcher's (its --title-room argument leaves the space), never over the
    environment, where the tuner's marker for leftovers is read (tuner/coordination/
    leftovers.py). Without setproctitle the server shows the launcher's command line."""
    try:
        import setproctitle
    except ImportError:
        return
    os.environ["SPT_NOENV"] = "1"  # read at its first call
    try:
        setproctitle.setproctitle(title)
    finally:
        os.environ.pop("SPT_NOENV", None)


def _stop_all(running: set[int]) -> None:
    """Our tuner has gone: no server of ours outlives the launcher."""
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while running and time.monotonic() < deadline:
        _reap(running, report=False)
        time.sleep(0.05)
    for pid in running:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _reap(running: set[int], report: bool = True) -> None:
    while running:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        running.discard(pid)
        if report:
            _say({"exited": pid, "code": os.waitstatus_to_exitcode(status)})


def serve_requests() -> int:
    wakeup = os.pipe()
    os.set_blocking(wakeup[0], False)
    os.set_blocking(wakeup[1], False)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    signal.set_wakeup_fd(wakeup[1])
    running: set[int] = set()
    pending = b""
    _say({"ready": os.getpid()})
    while True:
        readable, _, _ = select.select([0, wakeup[0]], [], [])
        if wakeup[0] in readable:
            with contextlib.suppress(BlockingIOError):
                os.read(wakeup[0], 4096)
            _reap(running)
        if 0 not in readable:
            continue
        chunk = os.read(0, 65536)
        if not chunk:
            _stop_all(running)
            return 0
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            try:
                request = json.loads(line)
                pid = os.fork()
            except (ValueError, OSError) as exc:
                _say({"error": str(exc)})
                continue
            if pid == 0:
                _child(request, wakeup)
            running.add(pid)
            _say({"started": pid})


if __name__ == "__main__":
    _set_title(f"model_server.launcher: forks the model servers of pid {os.getppid()}")
    _imported()
    sys.exit(serve_requests())

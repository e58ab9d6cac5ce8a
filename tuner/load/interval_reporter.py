"""Locust plugin: the interval stream, the user classes of the mode, and a parent watchdog.

The runner loads this file next to the locustfile (`-f locustfile.py,interval_reporter.py`),
so the stream works for any locustfile, ours or the user's. The recording itself is in
tuner.load.recorder; this file wires it to Locust's events.

TUNER_LOAD_ARRIVAL picks the user classes that run: "poisson" keeps the OpenLoopUser
subclasses, "closed" every other one, so one locustfile can serve both modes. A file
without a class for the mode stops Locust with one sentence, prefixed `tuner-load-error:`
so the runner can quote it.

With `load.workers` the master relays steps and lines to and from workers on other hosts
(tuner.load.distributed).

Locust runs until the tuner stops it (open-loop sessions have no fixed length); should the
tuner die without stopping it, the watchdog ends Locust within a second.
"""

from __future__ import annotations

import logging
import os
import sys
import time

import gevent
from locust import events
from locust.runners import MasterRunner, WorkerRunner

from tuner.load import distributed, gc_probe
from tuner.load.classify import classify_failure
from tuner.load.locust_process import ERROR_PREFIX
from tuner.load.open_loop import OpenLoopUser
from tuner.load.recorder import recorder

ARRIVAL = os.environ.get("TUNER_LOAD_ARRIVAL", "closed")
PARENT_PID = int(os.environ.get("TUNER_LOAD_PARENT_PID", "0"))
log = logging.getLogger(__name__)


def _fail(message: str) -> None:
    sys.stderr.write(f"{ERROR_PREFIX} {message}\n")
    sys.stderr.flush()
    os._exit(1)


@events.init.add_listener
def _on_init(environment, **_kwargs) -> None:
    # With --processes the master makes no requests; only the workers report.
    recorder.enabled = not isinstance(environment.runner, MasterRunner)
    recorder.open_loop = ARRIVAL == "poisson"
    _select_user_classes(environment)
    if distributed.WORKERS and isinstance(environment.runner, MasterRunner):
        distributed.relay_master(
            environment, os.environ["TUNER_LOAD_CONTROL_FILE"], recorder.write_line
        )
    if distributed.REMOTE and isinstance(environment.runner, WorkerRunner):
        distributed.join_master(
            environment,
            recorder,
            os.environ.get("TUNER_LOAD_WORKER_NAME", ""),
            os.environ.get("TUNER_LOAD_FINGERPRINT", ""),
        )
    if PARENT_PID:
        gevent.spawn(_watch_parent, environment)
    gc_probe.start()


def _select_user_classes(environment) -> None:
    classes = environment.user_classes
    if ARRIVAL == "poisson":
        kept = [c for c in classes if issubclass(c, OpenLoopUser)]
        if not kept:
            _fail(
                'load.arrival = "poisson" needs a locustfile whose User class subclasses '
                "tuner.load.open_loop.OpenLoopUser and implements arrival() (see "
                'docs/reference/load-profile.md, "Your own locustfile"); this one has '
                + (", ".join(c.__name__ for c in classes) or "no User class")
            )
        for cls in kept:
            extra = [t for t in cls.tasks if t is not OpenLoopUser.schedule]
            if extra:
                _fail(
                    f"{cls.__name__} is an OpenLoopUser, whose only task is the arrival "
                    f"scheduler; move what its @task {_task_name(extra[0])} does into "
                    "arrival(), which sends one request per arrival"
                )
    else:
        kept = [c for c in classes if not issubclass(c, OpenLoopUser)]
        if not kept:
            _fail(
                'load.arrival = "closed" needs a locustfile with a User class that is not an '
                "OpenLoopUser; this one has only " + ", ".join(c.__name__ for c in classes)
            )
    classes[:] = kept


def _task_name(task) -> str:
    return getattr(task, "__name__", type(task).__name__)


def _watch_parent(environment) -> None:
    while True:
        gevent.sleep(1.0)
        try:
            os.kill(PARENT_PID, 0)
        except ProcessLookupError:
            log.warning("event=tuner_gone pid=%d action=quit", PARENT_PID)
            environment.runner.quit()
            gevent.sleep(5.0)
            os._exit(1)
        except PermissionError:
            pass


@events.test_start.add_listener
def _on_test_start(**_kwargs) -> None:
    if not recorder.open_loop:
        recorder.begin_step(0, time.monotonic(), None)


@events.test_stop.add_listener
def _on_test_stop(**_kwargs) -> None:
    recorder.stop()


@events.request.add_listener
def _on_request(response_time=0.0, exception=None, response=None, **_kwargs) -> None:
    code = None
    if exception is not None:
        status = getattr(response, "status_code", None)
        body = None
        if status and status >= 400:
            try:
                body = response.content
            except Exception:
                body = None
        code = classify_failure(status, body, exception)
    recorder.record(response_time or 0.0, code)

"""Locust workers on other hosts: the master's relay and the worker's end of it.

With `load.processes` the workers are forked on the tuner's host and share its files (the
interval stream, the control file) and its monotonic clock. Workers started elsewhere with
`python -m tuner load-worker` share none of them, so Locust's own master/worker channel
(ZeroMQ, the port the master binds) carries what the files carry locally:

- master -> workers: each step the tuner writes to the control file, as a `tuner_step`
  message with the time left until its start (control.step_message);
- master -> worker: the request bodies (`load.requests`, `load.generate_rows`, the model's
  warm-up file), as the bytes of the files the tuner wrote (request_set.py), in a
  `tuner_requests` message answering the worker's `tuner_want_requests`; the worker's
  scheduler asks before it says ready, so it never sends a request the tuner did not
  configure, and its fingerprint hashes the bytes it received;
- workers -> master: every interval line and the ready line, as `tuner_line` messages,
  which the master appends to the interval file tagged with the worker's Locust id, so
  the tuner reads one stream whatever the number of hosts;
- the master also writes which workers are connected whenever that changes, and a
  `worker_lost` line when a worker that was connected quits or stops sending heartbeats
  (Locust marks it missing after 3 missed 1 s heartbeats, `heartbeat_worker` in
  locust/runners.py), so the tuner fails the step naming the worker instead of waiting.

Imported by the interval reporter plugin inside Locust processes only.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import gevent
import gevent.event

from tuner.load import request_set
from tuner.load.control import (
    CONTROL_POLL_S,
    StepInbox,
    StepReader,
    step_from_message,
    step_message,
)

MASTER_SILENT_S = 5.0  # the master heartbeats every second; silent this long, it is gone
ASK_AGAIN_S = 1.0  # a worker asks for the requests again when no answer came this soon
STEP_MESSAGE = "tuner_step"
log = logging.getLogger(__name__)
LINE_MESSAGE = "tuner_line"
WANT_REQUESTS_MESSAGE = "tuner_want_requests"
REQUESTS_MESSAGE = "tuner_requests"
WORKERS = int(os.environ.get("TUNER_LOAD_WORKERS", "0"))  # set on the tuner's master
REMOTE = os.environ.get("TUNER_LOAD_REMOTE") == "1"  # set by `python -m tuner load-worker`

# A remote worker's steps, fed by the master's messages and polled by the scheduler.
inbox = StepInbox()
# Set on a remote worker once the master's requests are installed (request_set.current).
requests_received = gevent.event.Event()


def relay_master(environment, control_file: str, write_line: Callable[[dict], None]) -> None:
    """On the tuner's master: forward steps, collect lines, watch the workers."""
    runner = environment.runner
    names: dict[str, str] = {}

    def on_line(msg, **_kwargs) -> None:
        line = dict(msg.data)
        line["source"] = msg.node_id
        if line.get("ready"):
            names[msg.node_id] = str(line.get("worker") or msg.node_id)
        write_line(line)

    def on_want_requests(msg, **_kwargs) -> None:
        requests = request_set.current()
        payload = requests.to_message() if requests is not None else {"rest": None}
        runner.send_message(REQUESTS_MESSAGE, payload, client_id=msg.node_id)

    runner.register_message(LINE_MESSAGE, on_line)
    runner.register_message(WANT_REQUESTS_MESSAGE, on_want_requests)
    gevent.spawn(_relay, runner, StepReader(control_file), write_line, names)


def _connected(runner) -> set[str]:
    clients = runner.clients
    return {c.id for c in clients.ready + clients.spawning + clients.running}


def _relay(runner, reader: StepReader, write_line: Callable[[dict], None], names) -> None:
    previous: set[str] = set()
    while True:
        step = reader.poll()
        if step is not None:
            runner.send_message(STEP_MESSAGE, step_message(step, time.monotonic()))
        connected = _connected(runner)
        if connected != previous:
            for lost in sorted(previous - connected):
                state = "missing" if runner.clients.get(lost) is not None else "quit"
                write_line({"worker_lost": lost, "name": names.get(lost, lost), "state": state})
            write_line({"workers": sorted(connected)})
            previous = connected
        gevent.sleep(CONTROL_POLL_S)


def join_master(environment, recorder, name: str, fingerprint: str) -> None:
    """On a remote worker: lines go to the master, steps come from it."""
    runner = environment.runner
    recorder.sink = lambda line: runner.send_message(LINE_MESSAGE, line)
    recorder.ready_extra = {"worker": name, "fingerprint": fingerprint}

    def on_step(msg, **_kwargs) -> None:
        inbox.put(step_from_message(msg.data, time.monotonic()))

    def on_requests(msg, **_kwargs) -> None:
        requests = request_set.RequestSet.from_message(msg.data)
        request_set.install(requests)
        if requests is not None:
            target = os.environ.get("TUNER_LOAD_TARGET", "service")
            recorder.ready_extra["fingerprint"] = fingerprint + request_set.fingerprint(
                requests.rest_data, requests.order, requests.path, target
            )
        requests_received.set()

    runner.register_message(STEP_MESSAGE, on_step)
    runner.register_message(REQUESTS_MESSAGE, on_requests)
    gevent.spawn(_quit_when_master_silent, runner)


def await_requests(runner) -> None:
    """On a remote worker, before its scheduler says ready: the master's request bodies."""
    while not requests_received.is_set():
        runner.send_message(WANT_REQUESTS_MESSAGE, None)
        requests_received.wait(ASK_AGAIN_S)


def _quit_when_master_silent(runner) -> None:
    """A master killed without sending `quit` leaves Locust's worker waiting 60 s, and the
    next trial's master would not adopt it; quit now so load-worker starts a fresh one."""
    while True:
        gevent.sleep(1.0)
        last = runner.last_heartbeat_timestamp
        if last is not None and time.time() - last > MASTER_SILENT_S:
            log.warning("event=master_silent seconds=%.0f action=quit", time.time() - last)
            runner.quit()
            gevent.sleep(2.0)
            os._exit(0)

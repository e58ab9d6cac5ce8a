"""Open-loop load in Locust: `OpenLoopUser`, the base class of an open-loop locustfile.

One OpenLoopUser runs per Locust process (the runner starts as many users as processes).
Its only task is a scheduler: it sends arrivals at the current step's rate with
exponential gaps, each in a greenlet of its own calling `arrival()`, so a slow response
never delays the next arrival (a few users with waits would be a closed loop in disguise).
At most the process's share of `max_in_flight` arrivals are outstanding; an arrival due
while the ceiling is reached is not sent and is counted as skipped, so the measurement
says the offered rate was not achieved instead of quietly turning into a closed loop.

The schedule is absolute (offsets from the step's start, control.py): the first arrival
comes one exponential gap after the start, not in a burst, and a scheduler waking late
sends what is due at once, counted as late, without shifting later arrivals.

A locustfile for open-loop mode subclasses OpenLoopUser and implements `arrival()`: send
ONE request with `self.client` and return when it is answered. It must not define
`@task`s or a `wait_time` (the scheduler is the task).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator

import gevent
from gevent.pool import Group
from locust import constant, task

from tuner.load import distributed
from tuner.load.arrivals import process_rate, share, step_arrivals
from tuner.load.control import CONTROL_POLL_S, Step, StepInbox, StepReader
from tuner.load.http_user import ResendingHttpUser
from tuner.load.recorder import recorder

log = logging.getLogger(__name__)

LOCUSTFILE_EXCEPTION = "locustfile_exception"
_PROCESSES = int(os.environ.get("TUNER_LOAD_PROCESSES", "1"))
_MAX_IN_FLIGHT = int(os.environ.get("TUNER_LOAD_MAX_IN_FLIGHT", "256"))
_TIMEOUT_S = float(os.environ.get("TUNER_LOAD_REQUEST_TIMEOUT_S", "10"))
_CONTROL_FILE = os.environ.get("TUNER_LOAD_CONTROL_FILE")
_schedulers_running = 0


class OpenLoopUser(ResendingHttpUser):
    """Subclass and implement `arrival()`; see the module docstring."""

    abstract = True
    wait_time = constant(0)
    # The connection pool must allow every outstanding request its own connection, or
    # arrivals would queue inside the client (geventhttpclient's pool is a semaphore).
    concurrency = max(1, -(-_MAX_IN_FLIGHT // _PROCESSES))
    network_timeout = _TIMEOUT_S
    connection_timeout = _TIMEOUT_S

    def arrival(self) -> None:
        raise NotImplementedError("an OpenLoopUser subclass must implement arrival()")

    @task
    def schedule(self) -> None:
        global _schedulers_running
        if _schedulers_running:
            # One scheduler per process; a second user would double the rate.
            log.warning("event=extra_open_loop_user action=idle")
            while True:  # idle, and as quick to stop as the scheduler
                self.wait()
                gevent.sleep(CONTROL_POLL_S)
        _schedulers_running += 1
        try:
            _Scheduler(self).run()
        finally:
            _schedulers_running -= 1


class _Scheduler:
    def __init__(self, user: OpenLoopUser) -> None:
        self.user = user
        self.index = max(0, getattr(user.environment.runner, "worker_index", 0))
        self.ceiling = share(_MAX_IN_FLIGHT, _PROCESSES, self.index)
        self.group = Group()
        self.reader: StepReader | StepInbox | None = None
        if _CONTROL_FILE:
            self.reader = StepReader(_CONTROL_FILE)
        elif distributed.REMOTE:
            self.reader = distributed.inbox
        self.step: Step | None = None
        self.pending: Step | None = None
        self.pending_arrivals: Iterator[float] | None = None
        self.arrivals: Iterator[float] | None = None
        self.next_offset: float | None = None
        self.drained_announced = False

    def run(self) -> None:
        if self.reader is None:
            raise RuntimeError("TUNER_LOAD_CONTROL_FILE is not set: open-loop load needs the tuner")
        if distributed.REMOTE:  # no request before the bodies the tuner configured
            distributed.await_requests(self.user.environment.runner)
        recorder.ready()
        try:
            while True:
                # Locust's graceful stop (--stop-timeout) ends a task only where it waits;
                # the scheduler's task never ends on its own, so without this every session's
                # stop sat out the whole timeout (1 s a trial) before Locust killed it.
                self.user.wait()
                self._tick()
        finally:
            self.group.kill(block=False)

    def _tick(self) -> None:
        new = self.reader.poll()
        if new is not None:
            self.pending = new
            # Drawn now, during the control lead, so the step starts on time.
            rate = process_rate(new.rate_rps, _PROCESSES)
            self.pending_arrivals = (
                step_arrivals(rate, self.index, new.window_start_s, new.window_s)
                if rate > 0
                else iter(())  # a drain: no arrivals until the next step
            )
        now = time.monotonic()
        if self.step is not None and self.next_offset is not None:
            limit = self.pending.start_at if self.pending is not None else now
            self._fire_due(min(now, limit))
        if self.pending is not None and self.pending.start_at <= now:
            assert self.pending_arrivals is not None
            self._activate(self.pending, self.pending_arrivals)
            self.pending = self.pending_arrivals = None
            if self.next_offset is not None:
                self._fire_due(now)
        wake = now + CONTROL_POLL_S
        if self.pending is not None:
            wake = min(wake, self.pending.start_at)
        if self.step is not None and self.next_offset is not None:
            wake = min(wake, self.step.start_at + self.next_offset)
        gevent.sleep(max(0.0, wake - time.monotonic()))

    def _activate(self, step: Step, arrivals: Iterator[float]) -> None:
        self.step = step
        rate = process_rate(step.rate_rps, _PROCESSES)
        self.arrivals = arrivals
        self.next_offset = next(self.arrivals, None)
        if self.next_offset is None:
            self._begin_drain(step)
            return
        recorder.begin_step(step.number, step.start_at, step.rate_rps)
        log.info(
            "event=step_start step=%d rate_rps=%g process_rate_rps=%g",
            step.number,
            step.rate_rps,
            rate,
        )

    def _fire_due(self, until: float) -> None:
        """Send (or skip, at the ceiling) every arrival scheduled before `until`."""
        step, arrivals = self.step, self.arrivals
        assert step is not None and arrivals is not None and self.next_offset is not None
        while step.start_at + self.next_offset <= until:
            offset = self.next_offset
            if recorder.in_flight >= self.ceiling:
                recorder.skipped(offset, recorder.in_flight)
            else:
                recorder.in_flight += 1
                lag = time.monotonic() - (step.start_at + offset)
                recorder.arrival(offset, lag, recorder.in_flight)
                self.group.spawn(self._send)
            self.next_offset = next(arrivals)
        recorder.horizon = self.next_offset

    def _begin_drain(self, step: Step) -> None:
        """Arrivals stop; completions are no longer recorded; the tuner hears how many
        requests are in flight now, and again once none is."""
        recorder.stop()
        self.drained_announced = False
        recorder.write_line(
            {"source": os.getpid(), "step": step.number, "in_flight": recorder.in_flight}
        )
        log.info("event=drain_start step=%d in_flight=%d", step.number, recorder.in_flight)
        self._announce_drained()

    def _announce_drained(self) -> None:
        step = self.step
        if step is None or self.next_offset is not None or self.drained_announced:
            return
        if recorder.in_flight == 0:
            self.drained_announced = True
            recorder.write_line(
                {"source": os.getpid(), "step": step.number, "in_flight": 0, "drained": True}
            )

    def _send(self) -> None:
        started = time.perf_counter()
        try:
            self.user.arrival()
        except gevent.GreenletExit:
            raise
        except Exception as exc:
            # A bug in the locustfile: count it where the user sees it, keep the schedule.
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            recorder.record(elapsed_ms, LOCUSTFILE_EXCEPTION)
            self.user.environment.events.user_error.fire(
                user_instance=self.user, exception=exc, tb=exc.__traceback__
            )
        finally:
            recorder.in_flight -= 1
            self._announce_drained()

"""Per-process interval recording inside a Locust process: completions, and in open-loop
mode arrivals, emitted as one JSON line per fixed interval.

It lives in the package (not in the `-f` plugin file, which Locust imports under its file
name) so the plugin and the open-loop scheduler share one recorder per process.

A request counts in the interval in which it completed, computed from the clock when
Locust reports it; an arrival counts in the interval in which it was scheduled, so a
scheduler waking late never moves an arrival to the wrong interval. An interval is emitted
once its end has passed and (open loop) the scheduler has dealt with every arrival due in
it, so its arrival count is final.

Each step restarts the interval grid at the step's start (the same instant in every
process, see control.py); completions of requests sent in the previous step land in the
new step's first intervals, which its warm-up absorbs.

Lines go to `sink` when one is set (a worker on another host sends them to the master as
Locust messages, distributed.py), else to the file named by TUNER_LOAD_INTERVALS_FILE
(opened O_APPEND and written with one write() per line, so the processes of
`--processes N` can share it), else to stdout.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections import Counter
from collections.abc import Callable

import gevent

LATE_S = 0.010  # an arrival sent later than this after its scheduled time counts as late
HORIZON_WAIT_S = 1.0  # emit anyway when the scheduler has not caught up by then


class _Bucket:
    __slots__ = (
        "arrivals",
        "failures",
        "failures_by_code",
        "in_flight_max",
        "lag_max_s",
        "late",
        "latencies_ms",
        "skipped",
    )

    def __init__(self) -> None:
        self.latencies_ms: list[float] = []
        self.failures = 0
        self.failures_by_code: Counter[str] = Counter()
        self.arrivals = 0
        self.skipped = 0
        self.late = 0
        self.lag_max_s = 0.0
        self.in_flight_max = 0


class IntervalRecorder:
    def __init__(self, interval_s: float, path: str | None) -> None:
        self.interval_s = interval_s
        self.path = path
        self.enabled = True
        self.open_loop = False
        self.step: int | None = None
        self.target_rps: float | None = None
        self.origin: float | None = None  # time.monotonic() of the current step's start
        self.horizon = math.inf  # offset up to which the scheduler has dealt with arrivals
        self.in_flight = 0  # kept by the open-loop scheduler
        self.next_index = 0
        self.buckets: dict[int, _Bucket] = {}
        self.sink: Callable[[dict], None] | None = None
        self.ready_extra: dict = {}  # more fields of the ready line (a worker's name)
        self._fd: int | None = None
        self._greenlet: gevent.Greenlet | None = None

    def begin_step(self, number: int, start_at: float, target_rps: float | None) -> None:
        """Start a new interval grid at `start_at`; the previous step's unfinished interval
        is dropped (its window, if any, ended before the tuner asked for this step)."""
        if not self.enabled:
            return
        self._kill_emitter()
        if self.origin is not None:
            self._emit_due(limit=start_at)
        self.step = number
        self.target_rps = target_rps
        self.origin = start_at
        self.horizon = 0.0 if self.open_loop else math.inf
        self.next_index = 0
        self.buckets = {}
        self._greenlet = gevent.spawn(self._loop)

    def stop(self) -> None:
        self._kill_emitter()
        self.origin = None

    def _kill_emitter(self) -> None:
        if self._greenlet is not None:
            self._greenlet.kill(block=False)
            self._greenlet = None

    def _bucket(self, index: int) -> _Bucket:
        bucket = self.buckets.get(index)
        if bucket is None:
            bucket = self.buckets[index] = _Bucket()
        return bucket

    def record(self, response_time_ms: float, failure_code: str | None) -> None:
        """A completed request (Locust's request event)."""
        if self.origin is None:
            return
        index = max(0, int((time.monotonic() - self.origin) / self.interval_s))
        bucket = self._bucket(index)
        bucket.latencies_ms.append(round(float(response_time_ms), 3))
        if failure_code is not None:
            bucket.failures += 1
            bucket.failures_by_code[failure_code] += 1

    def arrival(self, offset_s: float, lag_s: float, in_flight: int) -> None:
        """An arrival sent `lag_s` after its scheduled offset; `in_flight` includes it."""
        bucket = self._bucket(int(offset_s / self.interval_s))
        bucket.arrivals += 1
        if lag_s > LATE_S:
            bucket.late += 1
        bucket.lag_max_s = max(bucket.lag_max_s, lag_s)
        bucket.in_flight_max = max(bucket.in_flight_max, in_flight)

    def skipped(self, offset_s: float, in_flight: int) -> None:
        """An arrival not sent because the in-flight ceiling was reached."""
        bucket = self._bucket(int(offset_s / self.interval_s))
        bucket.skipped += 1
        bucket.in_flight_max = max(bucket.in_flight_max, in_flight)

    def ready(self) -> None:
        """Tells the tuner this process's scheduler is running and waits for a step."""
        if self.enabled:
            self.write_line({"source": os.getpid(), "ready": True, **self.ready_extra})

    def _loop(self) -> None:
        while self.origin is not None:
            end = self.origin + (self.next_index + 1) * self.interval_s
            gevent.sleep(max(0.0, end - time.monotonic()))
            self._emit_due()
            if self.origin is not None and time.monotonic() >= end:
                gevent.sleep(0.002)  # waiting for the scheduler to catch up

    def _emit_due(self, limit: float | None = None) -> None:
        """Emit every complete interval: ended (before `limit`, if given) and with all its
        arrivals dealt with."""
        now = time.monotonic() if limit is None else limit
        origin = self.origin
        assert origin is not None
        while True:
            end_offset = (self.next_index + 1) * self.interval_s
            if origin + end_offset > now:
                return
            caught_up = self.horizon >= end_offset
            if limit is None and not caught_up and now < origin + end_offset + HORIZON_WAIT_S:
                return
            self._emit(self.next_index, self.buckets.pop(self.next_index, _Bucket()))
            self.next_index += 1
            # Requests outstanding now are outstanding in the next interval too.
            following = self._bucket(self.next_index)
            following.in_flight_max = max(following.in_flight_max, self.in_flight)

    def _emit(self, index: int, bucket: _Bucket) -> None:
        line: dict = {
            "source": os.getpid(),
            "step": self.step,
            "index": index,
            "requests": len(bucket.latencies_ms),
            "failures": bucket.failures,
            "latencies_ms": bucket.latencies_ms,
            "failures_by_code": dict(bucket.failures_by_code),
        }
        if self.open_loop:
            line.update(
                target_rps=self.target_rps,
                arrivals=bucket.arrivals,
                skipped=bucket.skipped,
                late=bucket.late,
                lag_max_ms=round(bucket.lag_max_s * 1000.0, 3),
                in_flight_max=bucket.in_flight_max,
            )
        self.write_line(line)

    def write_line(self, line: dict) -> None:
        if self.sink is not None:
            self.sink(line)
            return
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        if self.path is None:
            sys.stdout.write(data.decode())
            sys.stdout.flush()
            return
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


recorder = IntervalRecorder(
    float(os.environ.get("TUNER_LOAD_INTERVAL_S", "1.0")),
    os.environ.get("TUNER_LOAD_INTERVALS_FILE"),
)

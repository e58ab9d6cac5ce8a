"""Open-loop load as a sequence of steps at different rates, in ONE Locust session.

Starting Locust costs 1-2 s (imports, the locustfile, workers connecting); a capacity
search runs several steps per trial, so the generator starts Locust once and switches the
rate through the control file (control.py): a switch costs the control lead (0.1 s) plus
the wait for the last interval's line, not a restart.

    with OpenLoopGenerator(profile, url, workdir, cpu_pids=...) as gen:
        low = gen.step(200.0)
        high = gen.step(400.0)

Each step is a warm-up (`profile.warmup_s`, excluded) then a window (`profile.measure_s`)
at the step's rate, both optionally overridden per step. Between steps the load goes on at
the previous rate, so the server never idles; requests still in flight from the previous
step complete during the next step's warm-up (a request counts in the interval in which
it ENDED, as in closed mode), which is why a step's warm-up must be at least one interval
when the previous step was overloaded. Arrivals count where they were scheduled.

With `profile.workers` the session is a Locust master on `master_bind_host:port` whose
load comes from `python -m tuner load-worker` processes on other hosts (distributed.py):
start() fails with one sentence when they are not all connected and ready within
`worker_timeout_s`, or run a different config; a step fails naming the worker that quit
or stopped answering.

`close()` (also on any exception or KeyboardInterrupt, via `with`) leaves no Locust
process alive; should the tuner itself be killed, Locust's watchdog ends it within a second.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tuner.load.collect import IntervalStream, WindowCollector
from tuner.load.control import CONTROL_LEAD_S, Step, write_step
from tuner.load.locust_process import (
    LocustRun,
    fingerprint,
    master_address,
    worker_hint,
)
from tuner.load.spec import (
    IntervalSample,
    LoadGeneratorError,
    LoadProfile,
    LoadProfileError,
    LoadResult,
    check_rate,
    whole_intervals,
)
from tuner.load.window import IntervalMerger, WindowFigures
from tuner.process import log_tail

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Drain:
    drained: bool  # every request in flight when arrivals stopped has completed
    in_flight: int  # requests in flight when arrivals stopped
    waited_s: float


STARTUP_ALLOWANCE_S = 60.0  # Locust's imports, the locustfile, workers connecting
STEP_SLACK_S = 10.0  # beyond a step's own length, before its window counts as lost
POLL_S = 0.02


class OpenLoopGenerator:
    """A running open-loop Locust session; see the module docstring."""

    def __init__(
        self,
        profile: LoadProfile,
        target_url: str,
        workdir: Path,
        cpu_pids: Callable[[], list[int]] | None = None,
    ) -> None:
        if not profile.open_loop:
            raise LoadProfileError(
                f'the open-loop generator needs load.arrival = "poisson", not {profile.arrival!r}'
            )
        self.profile = profile
        self.target_url = target_url
        self.workdir = Path(workdir)
        self.cpu_pids = cpu_pids
        self.control_path = self.workdir / "control.json"
        self.steps: list[LoadResult] = []
        self._run: LocustRun | None = None
        self._stream: IntervalStream | None = None
        self._merger = IntervalMerger(profile.schedulers)
        self._ready: set[int | str] = set()
        self._connected: list[str] = []  # remote workers connected to the master (workers > 0)
        self._next_index = 0  # the session-wide index of the next step's first interval
        self._origin: float | None = None  # monotonic start of the first step
        self._closed = False
        self._number = 0  # control steps sent, drains included

    def _next_number(self) -> int:
        number = self._number
        self._number += 1
        return number

    # -- life cycle -------------------------------------------------------------------

    def __enter__(self) -> OpenLoopGenerator:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Start Locust and wait until every process's scheduler is ready."""
        self.launch()
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise

    def launch(self) -> None:
        """Start Locust without waiting for it: it sends nothing before the first step, so
        its 1-2 s start-up can overlap the model server's restart; start() then waits."""
        if self._run is not None:
            return
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.control_path.unlink(missing_ok=True)
        log.info(
            "event=open_loop_start processes=%d max_in_flight=%d target=%s",
            self.profile.processes,
            self.profile.max_in_flight,
            self.target_url,
        )
        self._run = LocustRun(self.profile, self.target_url, self.workdir, self.control_path)
        self._stream = IntervalStream(self._run.intervals_path)

    def close(self) -> None:
        """Stop Locust (idempotent); afterwards step() refuses."""
        self._closed = True
        if self._run is not None:
            self._run.stop()

    @property
    def artifacts(self) -> list[Path]:
        return self._run.artifacts() if self._run is not None else []

    # -- steps ------------------------------------------------------------------------

    def step(
        self,
        rate_rps: float,
        on_interval: Callable[[IntervalSample], bool] | None = None,
        *,
        warmup_s: float | None = None,
        measure_s: float | None = None,
        extend: Callable[[WindowFigures], int] | None = None,
        max_extra_s: float = 0.0,
    ) -> LoadResult:
        """Offer `rate_rps` for a warm-up then a window; the window's LoadResult.

        `on_interval` sees each interval of this step as it completes (warm-up flagged);
        returning False ends the step early (`stopped_early`), the session stays usable.
        `extend`, at the window's last interval, returns how many intervals more to measure
        (the window stays one: an undecided verdict measured longer), within `max_extra_s`.
        """
        rate = check_rate(rate_rps)
        interval = self.profile.interval_s
        warmup = whole_intervals(
            self.profile.warmup_s if warmup_s is None else warmup_s, interval, "warmup_s", 0
        )
        measure = whole_intervals(
            self.profile.measure_s if measure_s is None else measure_s, interval, "measure_s", 1
        )
        if self._closed:
            raise LoadGeneratorError("the open-loop generator is closed; start a new one")
        self.start()
        run = self._run
        assert run is not None
        number = self._next_number()
        start_at = time.monotonic() + CONTROL_LEAD_S
        if self._origin is None:
            self._origin = start_at
        self._merger.begin(number)
        write_step(
            self.control_path,
            Step(number, rate, start_at, warmup * interval, measure * interval),
        )
        log.info(
            "event=step_begin step=%d rate_rps=%g warmup_s=%g measure_s=%g",
            number,
            rate,
            warmup * interval,
            measure * interval,
        )
        collector = WindowCollector(
            interval_s=interval,
            warmup_intervals=warmup,
            measure_intervals=measure,
            locust_pid=run.pid,
            cpu_pids=self.cpu_pids,
            on_interval=on_interval,
            first_index=self._next_index,
            t0_s=start_at - self._origin,
            target_rps=rate,
            step=number,
            max_in_flight=self.profile.max_in_flight,
            extend=extend,
            window_start=start_at + warmup * interval,
            schedulers=self.profile.schedulers,
        )
        budget = CONTROL_LEAD_S + (warmup + measure) * interval + max_extra_s + STEP_SLACK_S
        try:
            self._pump(collector, budget, f"step {number} at {rate:g} req/s")
        except BaseException:
            self.close()
            raise
        self._next_index += len(collector.samples)
        result = collector.finish(run.log_text(), run.artifacts())
        self.steps.append(result)
        return result

    def drain(self, timeout_s: float) -> Drain:
        """Stop arrivals until every request in flight has completed, within `timeout_s`:
        what a step starts from, whatever the last one left behind (a backlog of up to
        max_in_flight requests, and whatever the target still queues for them). Nothing of
        it is measured."""
        if self._closed:
            raise LoadGeneratorError("the open-loop generator is closed; start a new one")
        self.start()
        run = self._run
        assert run is not None
        number = self._next_number()
        started = time.monotonic()
        self._merger.begin(number)
        write_step(self.control_path, Step(number, 0.0, started + CONTROL_LEAD_S, 0.0, 0.0))
        drained: set[int | str] = set()
        at_start = 0
        deadline = started + CONTROL_LEAD_S + timeout_s
        try:
            while len(drained) < self.profile.schedulers:
                exited = run.exited()
                for line in self._lines():
                    self._control_line(line, f"while draining before step {number + 1}")
                    if line.get("step") != number or "in_flight" not in line:
                        continue
                    if line.get("drained"):
                        drained.add(line["source"])
                    else:
                        at_start += int(line["in_flight"])
                if exited:
                    raise run.error(f"Locust exited with code {run.proc.returncode} while draining")
                if len(drained) >= self.profile.schedulers or time.monotonic() > deadline:
                    break
                time.sleep(POLL_S / 4)
        except BaseException:
            self.close()
            raise
        waited = time.monotonic() - started
        log.info(
            "event=drain in_flight=%d drained=%s waited_s=%.3f", at_start, bool(drained), waited
        )
        return Drain(len(drained) >= self.profile.schedulers, at_start, waited)

    # -- the stream -------------------------------------------------------------------

    def _lines(self) -> list[dict]:
        run, stream = self._run, self._stream
        assert run is not None and stream is not None
        try:
            return stream.read()
        except ValueError as exc:
            raise run.error(f"the interval stream has a malformed line ({exc})") from exc

    def _wait_ready(self) -> None:
        run = self._run
        assert run is not None
        wanted = self.profile.schedulers
        allowance = self.profile.worker_timeout_s if self.profile.workers else STARTUP_ALLOWANCE_S
        started = time.monotonic()
        while len(self._ready) < wanted:
            exited = run.exited()
            for line in self._lines():
                self._control_line(line, "while the workers connected")
                if line.get("ready"):
                    self._check_fingerprint(line)
                    self._ready.add(line["source"])
            if len(self._ready) >= wanted:
                break
            if exited:
                raise run.error(f"Locust exited with code {run.proc.returncode} while starting")
            if time.monotonic() - started > allowance:
                if self.profile.workers:
                    raise self._missing_workers(time.monotonic() - started)
                raise run.error(
                    f"Locust's {wanted} arrival scheduler(s) were not ready "
                    f"within {STARTUP_ALLOWANCE_S:.0f} s"
                )
            time.sleep(POLL_S)
        log.info("event=open_loop_ready processes=%d", len(self._ready))

    # -- remote workers ---------------------------------------------------------------

    def _error(self, message: str) -> LoadGeneratorError:
        run = self._run
        return LoadGeneratorError(message, log_tail(run.log_path) if run is not None else "")

    def _missing_workers(self, waited_s: float) -> LoadGeneratorError:
        connected = max(len(self._connected), len(self._ready))
        return self._error(
            f"expected {self.profile.workers} Locust workers at "
            f"{self.profile.master_bind_host}:{self.profile.master_bind_port}, {connected} "
            f"connected after {waited_s:.0f} s: {worker_hint(self.profile)}"
        )

    def _control_line(self, line: dict, when: str) -> None:
        """The master's lines about its workers: who is connected, who was lost."""
        if "workers" in line:
            self._connected = list(line["workers"])
        if "worker_lost" in line:
            how = (
                "stopped sending heartbeats (killed, or the network to it is down)"
                if line.get("state") == "missing"
                else "quit"
            )
            remaining = len([w for w in self._connected if w != line["worker_lost"]])
            raise self._error(
                f"Locust worker {line.get('name') or line['worker_lost']} {how} {when}; "
                f"{remaining} of {self.profile.workers} workers remain, so the offered rate "
                f"was not the target: restart `python -m tuner load-worker --master "
                f"{master_address(self.profile)}` on that host"
            )

    def _check_fingerprint(self, line: dict) -> None:
        if not self.profile.workers:
            return
        ours, theirs = fingerprint(self.profile), line.get("fingerprint")
        if theirs != ours:
            raise self._error(
                f"Locust worker {line.get('worker') or line['source']} runs a different load "
                f"setup ({theirs}) from the tuner's ({ours}): start every load-worker with "
                "the same tuner.toml and locustfile as the tuner"
            )

    def _pump(self, collector: WindowCollector, budget: float, what: str) -> None:
        """Feed the step's complete intervals to `collector` until it is done."""
        run = self._run
        assert run is not None
        deadline = time.monotonic() + budget
        while True:
            exited = run.exited()
            for line in self._lines():
                self._control_line(line, f"during {what}")
                if "index" not in line:
                    continue
                for data in self._merger.add(line):
                    if not collector.accept(data):
                        return
            if exited:
                raise run.error(f"Locust exited with code {run.proc.returncode} during {what}")
            if time.monotonic() > deadline:
                raise run.error(f"Locust did not deliver {what} within {budget:.0f} s")
            time.sleep(POLL_S)

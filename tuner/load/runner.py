"""Running one load profile: Locust in a subprocess, its interval stream read as it comes.

Locust is never imported here: it monkey-patches the standard library with gevent on
import, which would break the tuner's gRPC, SQLAlchemy and threads. The runner owns the
subprocess from start to end: whatever happens (the window is complete, `on_interval`
asks to stop, Locust fails, KeyboardInterrupt), the process group is gone when it returns.

Closed mode runs Locust for one window. Open-loop (`arrival = "poisson"`) runs one step of
an OpenLoopGenerator at `profile.rate_rps`; for several rates in one Locust session use
the generator directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

from tuner.load.collect import IntervalStream, WindowCollector, judge_saturation
from tuner.load.locust_process import LocustRun, run_time_s
from tuner.load.spec import IntervalSample, LoadProfile, LoadProfileError, LoadResult
from tuner.load.window import IntervalMerger

__all__ = ["judge_saturation", "run_load"]

log = logging.getLogger(__name__)

STARTUP_ALLOWANCE_S = 60.0  # Locust's imports, the locustfile, workers connecting
POLL_S = 0.05


def run_load(
    profile: LoadProfile,
    target_url: str,
    workdir: Path,
    on_interval: Callable[[IntervalSample], bool] | None = None,
    cpu_pids: Callable[[], list[int]] | None = None,
) -> LoadResult:
    """Run `profile` against `target_url`; figures cover the measurement window only.

    `on_interval` sees every interval (warm-up ones flagged) as soon as all Locust processes
    reported it; returning False stops the run (the result says `stopped_early`).
    `cpu_pids` names further processes (service, model server) whose CPU over the window
    is reported in `cpu_percent_by_pid`.
    """
    if profile.open_loop:
        from tuner.load.generator import OpenLoopGenerator

        if profile.rate_rps is None:
            raise LoadProfileError('load.rate_rps is required with load.arrival = "poisson"')
        with OpenLoopGenerator(profile, target_url, workdir, cpu_pids=cpu_pids) as generator:
            return generator.step(profile.rate_rps, on_interval=on_interval)
    log.info(
        "event=load_start users=%d processes=%d target=%s",
        profile.users,
        profile.processes,
        target_url,
    )
    run = LocustRun(profile, target_url, workdir)
    collector = WindowCollector(
        interval_s=profile.interval_s,
        warmup_intervals=profile.warmup_intervals,
        measure_intervals=profile.measure_intervals,
        locust_pid=run.pid,
        cpu_pids=cpu_pids,
        on_interval=on_interval,
    )
    try:
        _collect(run, IntervalMerger(profile.processes), collector, profile)
    finally:
        run.stop()
    result = collector.finish(run.log_text(), run.artifacts())
    if result.requests == 0 and not result.stopped_early:
        raise run.error(
            f"Locust completed no request in the {profile.measure_s:g} s measurement "
            "window; check the locustfile and that the target answers within "
            f"{profile.request_timeout_s:g} s"
        )
    return result


def _collect(
    run: LocustRun, merger: IntervalMerger, collector: WindowCollector, profile: LoadProfile
) -> None:
    """Read the stream until the window is complete, the caller stops, or Locust fails."""
    stream = IntervalStream(run.intervals_path)
    budget = STARTUP_ALLOWANCE_S + run_time_s(profile) + 10
    deadline = time.monotonic() + budget
    while True:
        exited = run.exited()
        try:
            lines = stream.read()
        except ValueError as exc:
            raise run.error(f"the interval stream has a malformed line ({exc})") from exc
        for line in lines:
            for data in merger.add(line):
                if not collector.accept(data):
                    return
        if exited:
            raise run.error(
                f"Locust exited with code {run.proc.returncode} before the measurement window ended"
            )
        if time.monotonic() > deadline:
            raise run.error(f"Locust did not deliver the measurement window within {budget:.0f} s")
        time.sleep(POLL_S)

"""The load profile a trial runs, and the figures it produces.

Plain data only: this module is imported by the tuner process, which must never import
Locust (Locust monkey-patches the standard library with gevent on import).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from tuner.percentile_ci import PercentileInterval


class LoadProfileError(ValueError):
    """A load profile that cannot be run as written; the message names the field."""


class LoadGeneratorError(RuntimeError):
    """Locust itself failed (not the target): the trial has no valid measurement."""

    reason = "load_generator_failed"

    def __init__(self, message: str, log_tail: str = "") -> None:
        super().__init__(message)
        self.log_tail = log_tail


def check_rate(rate_rps: float, name: str = "the offered rate") -> float:
    """An offered rate must be a positive, finite number of requests per second."""
    if isinstance(rate_rps, bool) or not isinstance(rate_rps, int | float):
        raise LoadProfileError(f"{name} must be a number of requests per second, not {rate_rps!r}")
    if not math.isfinite(rate_rps) or rate_rps <= 0:
        raise LoadProfileError(
            f"{name} must be a positive number of requests per second, not {rate_rps:g}"
        )
    return float(rate_rps)


def _whole_multiple(value: float, step: float) -> bool:
    ratio = value / step
    return math.isclose(ratio, round(ratio), abs_tol=1e-9)


ARRIVALS = ("closed", "poisson")
TARGETS = ("service", "rest", "grpc")


def whole_intervals(seconds: float, interval_s: float, name: str, minimum: int) -> int:
    """`seconds` as a whole number (>= minimum) of intervals: a step's warm-up or window."""
    if (
        isinstance(seconds, bool)
        or not isinstance(seconds, int | float)
        or not math.isfinite(seconds)
        or seconds < 0
        or not _whole_multiple(seconds, interval_s)
        or round(seconds / interval_s) < minimum
    ):
        kind = "zero or a whole" if minimum == 0 else "a positive whole"
        raise LoadProfileError(
            f"a step's {name} ({seconds!r}) must be {kind} multiple of load.interval_s "
            f"({interval_s:g})"
        )
    return round(seconds / interval_s)


@dataclass(frozen=True)
class LoadProfile:
    """The Locust profile: closed-loop users with no think time, or open-loop arrivals.

    `arrival = "closed"`: `users` users, each sending its next request when the last one
    answered (the number in flight is fixed). `arrival = "poisson"`: requests arrive at
    `rate_rps` with exponential gaps whatever the target does, at most `max_in_flight` of
    them outstanding (`users` and `spawn_rate` are then unused). Warm-up and measurement
    are whole numbers of intervals so every interval is either entirely warm-up or entirely
    measured; in open-loop mode they apply to every step.
    """

    users: int = 32
    spawn_rate: float = 32.0
    warmup_s: float = 5.0
    measure_s: float = 20.0
    interval_s: float = 1.0
    locustfile: Path | None = None
    processes: int = 1
    request_timeout_s: float = 10.0
    texts_per_request: int = 1
    arrival: str = "closed"
    rate_rps: float | None = None  # open loop: the offered rate of run_load's single step
    max_in_flight: int = 512  # open loop: the ceiling on outstanding requests, all processes
    # Open loop: > 0 runs Locust as a master waiting for this many `python -m tuner
    # load-worker` processes (other hosts), instead of local processes.
    workers: int = 0
    master_bind_host: str = "127.0.0.1"
    master_bind_port: int = 5557
    worker_timeout_s: float = 30.0  # every worker connected and ready within this, or fail
    # TF Serving REST bodies, one per line, posted to predict_path instead of the demo's
    # texts to /predict (tuner/measure/request_source.py writes it); "cycle" or "random" order.
    requests_file: Path | None = None
    requests_order: str = "cycle"
    predict_path: str = "/predict"
    # Who receives the load: "service" (the Starlette service), "rest" (the model server's
    # REST API) or "grpc" (its PredictionService; grpc_requests_file holds the bodies as
    # serialized PredictRequests, base64, one per line).
    target: str = "service"
    grpc_requests_file: Path | None = None

    def __post_init__(self) -> None:
        if self.arrival not in ARRIVALS:
            raise LoadProfileError(
                f'load.arrival must be "closed" or "poisson", not {self.arrival!r}'
            )
        if self.requests_order not in ("cycle", "random"):
            raise LoadProfileError(
                f'load.requests_order must be "cycle" or "random", not {self.requests_order!r}'
            )
        if self.target not in TARGETS:
            raise LoadProfileError(
                f'load.target must be "service", "rest" or "grpc", not {self.target!r}'
            )
        if self.users < 1:
            raise LoadProfileError(f"load.users must be at least 1, not {self.users}")
        if self.spawn_rate <= 0:
            raise LoadProfileError(f"load.spawn_rate must be positive, not {self.spawn_rate}")
        if self.interval_s <= 0:
            raise LoadProfileError(f"load.interval_s must be positive, not {self.interval_s}")
        if self.warmup_s < 0 or not _whole_multiple(self.warmup_s, self.interval_s):
            raise LoadProfileError(
                f"load.warmup_s ({self.warmup_s:g}) must be zero or a whole multiple of "
                f"load.interval_s ({self.interval_s:g})"
            )
        if self.measure_s <= 0 or not _whole_multiple(self.measure_s, self.interval_s):
            raise LoadProfileError(
                f"load.measure_s ({self.measure_s:g}) must be a positive whole multiple of "
                f"load.interval_s ({self.interval_s:g})"
            )
        if self.processes < 1:
            raise LoadProfileError(f"load.processes must be at least 1, not {self.processes}")
        self._check_workers()
        if self.arrival == "poisson":
            self._check_open_loop()
        elif self.processes > self.users:
            raise LoadProfileError(
                f"load.processes ({self.processes}) must not exceed load.users ({self.users}): "
                "a Locust process without users reports nothing"
            )
        if self.request_timeout_s <= 0:
            raise LoadProfileError(
                f"load.request_timeout_s must be positive, not {self.request_timeout_s}"
            )
        if self.texts_per_request < 1:
            raise LoadProfileError(
                f"load.texts_per_request must be at least 1, not {self.texts_per_request}"
            )
        if self.locustfile is not None and "," in str(self.locustfile):
            raise LoadProfileError(
                f"load.locustfile ({self.locustfile}) must not contain a comma "
                "(Locust reads commas as a list of files)"
            )

    def _check_open_loop(self) -> None:
        if self.rate_rps is not None:
            check_rate(self.rate_rps, "load.rate_rps")
        if isinstance(self.max_in_flight, bool) or not isinstance(self.max_in_flight, int):
            raise LoadProfileError(
                f"load.max_in_flight must be a whole number, not {self.max_in_flight!r}"
            )
        if self.max_in_flight < self.schedulers:
            what = "load.workers" if self.workers else "load.processes"
            raise LoadProfileError(
                f"load.max_in_flight ({self.max_in_flight}) must be at least 1 per Locust "
                f"process ({what} = {self.schedulers})"
            )

    def _check_workers(self) -> None:
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 0:
            raise LoadProfileError(
                f"load.workers must be a whole number >= 0 (0 = no remote workers), "
                f"not {self.workers!r}"
            )
        if not self.workers:
            return
        if self.arrival != "poisson":
            raise LoadProfileError(
                f"load.workers ({self.workers}) needs the open-loop capacity search "
                '(load.mode = "capacity"); the closed-loop profile runs on one host'
            )
        if self.processes != 1:
            raise LoadProfileError(
                f"load.workers ({self.workers}) and load.processes ({self.processes}) exclude "
                "each other: for more processes on a load host, start load-worker more times "
                "there and count them in load.workers"
            )
        host = self.master_bind_host
        if not isinstance(host, str) or not host or any(c in host for c in " /:[]"):
            raise LoadProfileError(
                f"load.master_bind_host must be an address to listen on such as 127.0.0.1 or "
                f"0.0.0.0 (no scheme, no port), not {host!r}"
            )
        port = self.master_bind_port
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise LoadProfileError(
                f"load.master_bind_port must be a TCP port from 1 to 65535, not {port!r}"
            )
        timeout = self.worker_timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise LoadProfileError(
                f"load.worker_timeout_s must be a positive number of seconds, not {timeout!r}"
            )

    @property
    def schedulers(self) -> int:
        """Locust processes that generate load: remote workers, else local processes."""
        return self.workers or self.processes

    @property
    def open_loop(self) -> bool:
        return self.arrival == "poisson"

    @property
    def warmup_intervals(self) -> int:
        return round(self.warmup_s / self.interval_s)

    @property
    def measure_intervals(self) -> int:
        return round(self.measure_s / self.interval_s)


@dataclass(frozen=True)
class IntervalSample:
    """One interval of load, all Locust processes merged; a request counts where it ended,
    an arrival where it was scheduled.

    `index` runs on across the steps of an open-loop session (so it stays a unique key);
    `step` says which step the interval belongs to, `t_s` is seconds since the first step
    (or the closed-loop load) started. The arrival fields are None in closed mode.
    """

    index: int
    t_s: float  # end of the interval, seconds since the load started
    in_warmup: bool
    requests: int  # completed requests, failures included
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failures_by_code: dict[str, int] = field(default_factory=dict)
    step: int = 0
    target_rps: float | None = None  # the step's target offered rate (open loop)
    arrivals: int | None = None  # arrivals sent (open loop)
    skipped: int | None = None  # arrivals not sent: the in-flight ceiling was reached
    in_flight_max: int | None = None  # most requests outstanding at once, summed over processes
    late: int | None = None  # arrivals sent more than LATE_MS after their scheduled time
    offered_rps: float | None = None  # arrivals sent per second in this interval


@dataclass(frozen=True)
class LoadResult:
    """The measurement window's figures (warm-up excluded) and everything behind them."""

    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    requests: int
    failures: int
    error_rate: float
    failures_by_code: dict[str, int]
    samples: list[IntervalSample]
    duration_s: float
    generator_cpu_percent: float | None
    generator_saturated: bool
    saturation_reason: str | None
    settled: bool
    settle_detail: str
    stopped_early: bool
    artifacts: list[Path]
    # pid given by `cpu_pids` -> mean CPU (100 = one core) of it and its descendants
    # over the measurement window.
    cpu_percent_by_pid: dict[int, float] = field(default_factory=dict)
    # Open loop (None / False in closed mode). `rps` stays completed requests per second.
    step: int = 0
    target_rps: float | None = None
    offered_rps_achieved: float | None = None  # arrivals sent per second over the window
    # arrivals the schedule held in the window per second: what was due, Poisson draw included
    scheduled_rps: float | None = None
    arrivals: int | None = None  # arrivals sent in the window
    skipped: int | None = None  # arrivals due in the window but not sent (ceiling reached)
    late: int | None = None  # arrivals sent more than 10 ms after their scheduled time
    in_flight_max: int | None = None
    in_flight_limit_hit: bool = False
    offered_detail: str | None = None  # one sentence on the offered rate, achieved or not
    # p50/p95/p99 -> the 95% interval from the window's requests, and its variance inflation
    percentile_intervals: dict[str, PercentileInterval] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list, repr=False)  # the window's, sorted
    # time.monotonic() at the start and end of the measured window (open loop)
    window_mono: tuple[float, float] | None = None

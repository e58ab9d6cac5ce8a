"""Measuring one configuration: restart the server with it, warm up, run the load, read back.

Shared by the trials and the confirmation pass, so a confirmed figure is measured exactly
the way the trial's own figure was.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from model_server.batching_parameters import BatchingParameters
from service.corpus import generate
from tuner.errors import TrialFailed
from tuner.load import IntervalSample, LoadGeneratorError, LoadProfile, LoadResult, run_load
from tuner.measure.faults import check_server, check_server_answers, check_service
from tuner.measure.server_start import ServerStarter
from tuner.measure.service_process import ServiceProcess
from tuner.measure.warmup import warm_up_target
from tuner.servers import ModelServerBackend
from tuner.servers.base import CpuMeter
from tuner.servers.metrics import MetricsError, mean_batch_size, queue_full_count, scrape

log = logging.getLogger("tuner")
SERVICE_READY_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Measurement:
    load: LoadResult
    goodput_rps: float  # successful requests per second: the objective's value
    mean_batch_size: float | None
    server_queue_full: int | None  # UNAVAILABLE rejections counted by the model server
    cpu_service_percent: float | None
    cpu_model_server_percent: float | None

    def percentile_ms(self, percentile: str) -> float | None:
        return getattr(self.load, f"{percentile}_ms")


class Measurer:
    def __init__(
        self,
        backend: ModelServerBackend,
        service: ServiceProcess,
        profile: LoadProfile,
        model_name: str,
        warmup_requests: int,
        move_ports: Callable[[int], bool] | None = None,
    ) -> None:
        """`move_ports`: see ServerStarter (tuner/measure/server_start.py)."""
        self.backend = backend
        self.starter = ServerStarter(backend, move_ports)
        self.service = service
        self.profile = profile
        self.model_name = model_name
        self.warmup_requests = warmup_requests
        self._texts = [text for text, _ in generate(64, seed=99)]
        self._service_pid: int | None = None
        self._server_pids: list[int] = []
        self._server_cpu_meter: CpuMeter | None = None

    def measure(
        self,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
        on_interval: Callable[[IntervalSample], bool] | None = None,
    ) -> Measurement:
        """Raises TrialFailed with the fail_reason when the configuration cannot be measured."""
        self.prepare(batching, server_flags, workdir)
        before = self.metrics()
        self.start_cpu_meter()
        try:
            result = run_load(
                self.profile,
                self.target_url,
                workdir / "load",
                on_interval=on_interval,
                cpu_pids=self.cpu_pids,
            )
        except LoadGeneratorError as exc:
            raise load_failed(exc) from None
        after = self.metrics()
        self.check_bench(result)
        cpu = result.cpu_percent_by_pid
        return Measurement(
            load=result,
            goodput_rps=result.rps * (1.0 - result.error_rate),
            mean_batch_size=mean_batch_size(before, after) if before and after else None,
            server_queue_full=queue_full_count(before, after) if before and after else None,
            cpu_service_percent=self.service_cpu(cpu),
            cpu_model_server_percent=self.server_cpu(cpu),
        )

    def prepare(
        self, batching: BatchingParameters | None, server_flags: dict[str, str], workdir: Path
    ) -> None:
        """Restart the model server with the configuration, wait for it and the service, and
        warm up; what every measurement (closed loop or capacity search) starts with."""
        workdir.mkdir(parents=True, exist_ok=True)
        self.starter.start(batching, server_flags, workdir)
        self.service.ensure_running(SERVICE_READY_TIMEOUT_S)  # it died in an earlier trial
        self.service.wait_ready(SERVICE_READY_TIMEOUT_S)
        self._warm_up()
        self._service_pid = self.service.pid
        self._server_pids = list(self.backend.pids)

    @property
    def target_url(self) -> str:
        """Where the load goes (load.target): the service, or the model server itself."""
        if self.profile.target == "rest":
            return self.backend.rest_url
        if self.profile.target == "grpc":
            return f"http://{self.backend.grpc_target}"
        return self.service.url

    def cpu_pids(self) -> list[int]:
        """The service's and the model server's processes, whose CPU each window reports."""
        return [p for p in (self._service_pid, *self._server_pids) if p is not None]

    def service_cpu(self, cpu: dict[int, float]) -> float | None:
        return cpu.get(self._service_pid) if self._service_pid is not None else None

    def start_cpu_meter(self) -> None:
        """Where the server has no host pids (a container), its CPU is read from the engine
        from this moment on: call it when the measured window starts."""
        self._server_cpu_meter = None if self._server_pids else self.backend.cpu_meter()

    def server_cpu(self, cpu: dict[int, float]) -> float | None:
        values = [cpu[p] for p in self._server_pids if p in cpu]
        if not values and self._server_cpu_meter is not None:
            return self._server_cpu_meter.percent()
        return sum(values) if values else None

    def check_bench(self, result: LoadResult) -> None:
        """After a step: raise TrialFailed when a part of the bench, not the configuration,
        made its figures (tuner/measure/faults.py)."""
        check_server(self.backend)
        check_service(self.service, result.failures_by_code)
        # Milliseconds for a live server, even a loaded one; a hung one may have answered
        # the step's first requests, so every step asks.
        check_server_answers(self.backend, self.model_name)

    def _warm_up(self) -> None:
        """The load's own requests, every status checked (tuner/measure/warmup.py)."""
        warm_up_target(self.profile, self.target_url, self._texts, self.warmup_requests)

    def metrics(self):
        try:
            return scrape(self.backend.metrics_url, model_name=self.model_name)
        except MetricsError as exc:
            log.warning("event=metrics_unavailable reason=%r", str(exc))
            return None


def load_failed(exc: LoadGeneratorError) -> TrialFailed:
    return TrialFailed("load_generator_failed", str(exc), log_tail=getattr(exc, "log_tail", ""))

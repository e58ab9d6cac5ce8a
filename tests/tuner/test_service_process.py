"""The study's service as the tuner runs it: `python -m service` with its workers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil

from tests.support.studies import config_for
from tuner.process import free_port
from tuner.service_process import service_for


def test_a_service_that_does_not_stop_in_time_leaves_no_worker_running(
    tmp_path: Path, demo_model_dir: Path
) -> None:
    config = config_for(tmp_path)
    config.service.workers = 2
    service = service_for(config, f"127.0.0.1:{free_port()}", demo_model_dir, tmp_path)
    workers: list[psutil.Process] = []
    try:
        service.start(config.service.ready_timeout_s)
        supervisor = psutil.Process(service.pid)
        workers = supervisor.children(recursive=True)
        assert len(workers) >= 2
        supervisor.suspend()  # hung: SIGTERM stays pending and the wait runs out
        service.stop(timeout_s=1.0)
        assert not supervisor.is_running()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert alive == []
    finally:
        service.stop()
        for worker in workers:  # whatever the outcome, the test leaves nothing running
            with contextlib.suppress(psutil.Error):
                worker.kill()

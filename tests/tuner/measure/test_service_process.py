"""The study's service as the tuner runs it: `python -m service` with its workers."""

from __future__ import annotations

import contextlib
from pathlib import Path

import psutil

from tests.support.studies import config_for
from tuner.measure.service_process import service_for
from tuner.process import free_port


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


def test_the_service_listens_where_service_host_says(tmp_path: Path, demo_model_dir: Path) -> None:
    """Load hosts reach the service on service.host: it binds there, and the URL Locust is
    given names it (127.0.0.2, another loopback address, stands in for a LAN address)."""
    config = config_for(tmp_path)
    config.service.host = "127.0.0.2"
    service = service_for(config, f"127.0.0.1:{free_port()}", demo_model_dir, tmp_path)
    try:
        service.start(config.service.ready_timeout_s)
        assert service.url.startswith("http://127.0.0.2:")
        listening = {
            c.laddr.ip
            for c in psutil.Process(service.pid).net_connections()
            if c.status == "LISTEN"
        }
        assert listening == {"127.0.0.2"}
    finally:
        service.stop()

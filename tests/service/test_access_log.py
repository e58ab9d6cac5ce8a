"""The access log writes whole JSON lines from a background thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import orjson

from service.access_log import AccessLog


def test_lines_from_many_threads_arrive_whole_and_complete(tmp_path: Path) -> None:
    path = tmp_path / "logs" / "access.log"
    log = AccessLog(str(path))
    log.start()

    def burst(worker: int) -> None:
        for i in range(500):
            log.write({"event": "request", "worker": worker, "i": i, "text": "x" * 50})

    threads = [threading.Thread(target=burst, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    log.close()
    lines = [orjson.loads(line) for line in path.read_bytes().splitlines()]
    assert len(lines) == 2000
    assert {(line["worker"], line["i"]) for line in lines} == {
        (w, i) for w in range(4) for i in range(500)
    }
    assert all("ts" in line and "pid" in line for line in lines)


def test_off_writes_nothing_and_appends_to_existing_files(tmp_path: Path) -> None:
    off = AccessLog("off")
    off.start()
    off.write({"event": "request"})
    off.close()
    assert not off.enabled

    path = tmp_path / "access.log"
    path.write_bytes(b'{"old": true}\n')
    log = AccessLog(str(path))
    log.start()
    log.write({"event": "request"})
    log.close()
    assert len(path.read_bytes().splitlines()) == 2


def test_lines_reach_the_file_while_running_not_only_at_close(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(str(path), flush_interval_s=0.02)
    log.start()
    try:
        log.write({"event": "request", "status": 200})
        deadline = time.monotonic() + 5.0
        while not path.read_bytes() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert orjson.loads(path.read_bytes())["status"] == 200
    finally:
        log.close()

"""One JSON line per request, written off the event loop.

The event loop only serialises the line (orjson, a few microseconds) and appends the bytes to
a deque; a daemon thread wakes every `flush_interval_s`, takes whatever has accumulated and
writes it with one `write(2)` on an O_APPEND descriptor. File I/O (a slow disk, a full pipe)
stays off the request path, and several uvicorn workers can share one file without
interleaving lines. This is the QueueHandler/QueueListener idea without the LogRecord
machinery, and without waking the writer on every line: the profiler showed a blocking
queue's per-line wake-up (futex + GIL hand-off + one write per request) costing more than
the line itself.
"""

from __future__ import annotations

import collections
import logging
import os
import threading
import time
from pathlib import Path

import orjson


class AccessLog:
    """Destination "-" is stderr, "off" disables logging, anything else is a file path."""

    def __init__(self, destination: str, *, flush_interval_s: float = 0.05) -> None:
        self.destination = destination
        self.enabled = destination != "off"
        self.flush_interval_s = flush_interval_s
        self._lines: collections.deque[bytes] = collections.deque()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._owns_fd = False
        self._pid = os.getpid()

    def start(self) -> None:
        if not self.enabled or self._thread is not None:
            return
        if self.destination == "-":
            self._fd = 2
        else:
            path = Path(self.destination)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            self._owns_fd = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="access-log", daemon=True)
        self._thread.start()

    def write(self, fields: dict[str, object]) -> None:
        """Queue one line; never blocks and never wakes the writer thread."""
        if self._thread is None:
            return
        fields["ts"] = round(time.time(), 6)
        fields["pid"] = self._pid
        self._lines.append(orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE))

    def close(self) -> None:
        """Write everything queued so far, then stop the thread."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout=10)
        self._thread = None
        self._flush()
        if self._owns_fd and self._fd is not None:
            os.close(self._fd)
        self._fd = None

    def _run(self) -> None:
        while not self._stop.wait(self.flush_interval_s):
            self._flush()
        self._flush()

    def _flush(self) -> None:
        lines, batch = self._lines, []
        try:
            while True:
                batch.append(lines.popleft())
        except IndexError:
            pass
        if batch and self._fd is not None:
            self._write_all(b"".join(batch))

    def _write_all(self, data: bytes) -> None:
        assert self._fd is not None
        view = memoryview(data)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
        except OSError as exc:
            # A full disk or a closed pipe must not take the service down; say so once per batch.
            logging.getLogger("service").error("access log write failed: %s", exc)

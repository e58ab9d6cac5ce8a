"""An HTTP/1.1 server on loopback that closes keep-alive connections unanswered on purpose.

A server closing an idle connection just as the client reuses it is a race of milliseconds
(tuner/load/keepalive.py); this one makes it certain: every `close_on`-th request on a
connection is read and the connection closed without a byte of response. Every other
request gets a prediction the default locustfile accepts, on a connection kept alive.
`answer=False` answers nothing (a server still working when the client gives up). It runs
in a thread of the test process, so the tests read its counts directly.
"""

from __future__ import annotations

import contextlib
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

_BODY = b'{"prediction": "Positive", "score": 0.9, "model_version": 1}'
_RESPONSE = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
    + str(len(_BODY)).encode()
    + b"\r\n\r\n"
    + _BODY
)


@dataclass
class Counts:
    connections: int = 0
    requests: int = 0
    answered: int = 0
    closed_unanswered: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, name: str) -> None:
        with self.lock:
            setattr(self, name, getattr(self, name) + 1)


@dataclass(frozen=True)
class ClosingServer:
    url: str
    port: int
    counts: Counts


def _read_request(stream) -> bool:
    """One request (head and Content-Length body) read off the stream; False at its end."""
    line = stream.readline()
    if not line:
        return False
    length = 0
    while (header := stream.readline()) not in (b"\r\n", b"\n", b""):
        name, _, value = header.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    stream.read(length)
    return True


@contextlib.contextmanager
def closing_server(close_on: int = 0, answer: bool = True) -> Iterator[ClosingServer]:
    """Started on a free port, always stopped; `close_on=0` never closes unanswered."""
    counts = Counts()

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            counts.add("connections")
            on_this = 0
            while _read_request(self.rfile):
                counts.add("requests")
                on_this += 1
                if not answer:
                    time.sleep(30)  # until the client gives up and the server stops
                    return
                if close_on and on_this % close_on == 0:
                    counts.add("closed_unanswered")
                    return  # the handler's end closes the connection
                self.wfile.write(_RESPONSE)
                self.wfile.flush()
                counts.add("answered")

    class Server(socketserver.ThreadingTCPServer):
        daemon_threads = True
        allow_reuse_address = True
        request_queue_size = 256

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    port = server.server_address[1]
    try:
        yield ClosingServer(f"http://127.0.0.1:{port}", port, counts)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)

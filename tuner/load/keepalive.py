"""Sending a request once more when the pooled connection it went out on was closed unanswered.

HTTP/1.1 lets a server close an idle connection at any moment (RFC 9112, section 9.3.1); the
service under test does after 5 s (uvicorn's keep-alive timeout). Our generator's pool keeps
connections idle between steps and, at low rates, deep in its stack within one, so now and
then it reuses one just as the server closes it: the request gets "connection closed" with no
response, counted as a `connection` failure that is the bench's doing, not the configuration's
(CI saw one in a trial that had no other failure). Browsers resend such a request when the
connection was a reused one, and Go's net/http does for requests marked idempotent; RFC 9110,
section 9.2.2 allows it for a method whose semantics are idempotent, and a prediction is.

The request is sent once more, on a new connection, so it cannot meet the same race: a server
that is gone refuses it and the failure stands; a timeout is never resent (the server may
still be working on it). Its latency counts both attempts, as a real client would see it.
"""

from __future__ import annotations

import logging
from typing import Any

from geventhttpclient.client import HTTPClient, HTTPClientPool
from geventhttpclient.response import HTTPConnectionClosed
from geventhttpclient.url import URL

log = logging.getLogger(__name__)

_resent = 0


def resendable(body: object) -> bool:
    """A body that can be sent again as it was: bytes, not a stream half read."""
    return body is None or isinstance(body, bytes | bytearray | memoryview | str)


class ResendingClient(HTTPClient):
    """An HTTPClient that sends a request once more, on a new connection, when the
    connection it went out on was closed before any response (see the module docstring)."""

    def __init__(self, host: str, port: int | None = None, **kw: Any) -> None:
        super().__init__(host, port, **kw)
        self._settings = kw

    def request(self, method: str, request_uri: str, body: Any = b"", headers: Any = None):
        try:
            return super().request(method, request_uri, body=body, headers=headers)
        except HTTPConnectionClosed as exc:  # closed or reset before any byte of a response
            if not resendable(body):
                raise
            _note_resend(exc)
        # A client of its own: one connection, new, closed once the response is read.
        fresh = HTTPClient(self.host, self.port, **{**self._settings, "concurrency": 1})
        try:
            return fresh.request(method, request_uri, body=body, headers=headers)
        finally:
            fresh.close()


class ResendingClientPool(HTTPClientPool):
    """Locust's per-user pool of clients, each a ResendingClient."""

    def get_client(self, url: str | URL) -> HTTPClient:
        url = url if isinstance(url, URL) else URL(url)
        key = (url.host, url.port)
        if key not in self.clients:
            self.clients[key] = ResendingClient.from_url(url, **self.client_args)
        return self.clients[key]


def _note_resend(exc: BaseException) -> None:
    """Logged the first time in a process and at every power of ten, so a server that closes
    every connection shows in locust.log without flooding it."""
    global _resent
    _resent += 1
    if str(_resent).rstrip("0") == "1":
        log.warning(
            "event=request_resent count=%d reason=%r error=%s",
            _resent,
            "the connection was closed before any response; sent again on a new one",
            type(exc).__name__,
        )

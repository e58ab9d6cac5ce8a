"""The REST API's listening socket. Its accepted connections inherit its options: with
Nagle's algorithm on, every response on a kept-alive connection but the first waited ~45 ms
for the client's delayed ACK (uvicorn writes headers and body apart), a latency TF Serving does
not have and that a `load.target = "rest"` study would have measured as the model's."""

from __future__ import annotations

import socket

import pytest

from model_server.preflight import StartupError
from model_server.server import _listening_socket


def test_the_rest_socket_has_nagles_algorithm_off_and_is_tcp_for_asyncio() -> None:
    sock = _listening_socket("127.0.0.1", 0)
    try:
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
        assert sock.proto == socket.IPPROTO_TCP  # asyncio sets TCP_NODELAY only on these
        client = socket.create_connection(sock.getsockname())
        sock.setblocking(True)
        accepted, _ = sock.accept()
        with client, accepted:
            assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) == 1
    finally:
        sock.close()


def test_a_taken_port_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StartupError, match="REST API"):
            _listening_socket("127.0.0.1", taken.getsockname()[1])

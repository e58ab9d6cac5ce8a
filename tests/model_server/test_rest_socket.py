"""The REST API's connections send each response at once (TCP_NODELAY), as TF Serving's one
write per reply does: without it a kept-alive connection waited ~44 ms per request for the
client's delayed ACK."""

from __future__ import annotations

import asyncio
import socket

import pytest

from model_server.preflight import StartupError
from model_server.server import _listening_socket
from tuner.process import free_port


def test_accepted_rest_connections_have_nodelay() -> None:
    async def accepted_nodelay() -> int:
        seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                seen.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        listening = _listening_socket("127.0.0.1", free_port())
        server = await asyncio.get_running_loop().create_server(Probe, sock=listening)
        try:
            port = listening.getsockname()[1]
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                return await asyncio.wait_for(seen, 10.0)
            finally:
                writer.close()
        finally:
            server.close()
            await server.wait_closed()

    assert asyncio.run(accepted_nodelay()) != 0


def test_a_taken_rest_port_is_one_sentence() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(StartupError, match="REST API"):
            _listening_socket("127.0.0.1", taken.getsockname()[1])

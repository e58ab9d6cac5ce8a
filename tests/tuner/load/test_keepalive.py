"""A request whose pooled connection the server closed unanswered is sent once more, on a new
connection; nothing else is resent. Against a real HTTP server on loopback that closes
connections on purpose (tests/support/closing_server.py), and through Locust itself."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from geventhttpclient.client import HTTPClient
from geventhttpclient.response import HTTPConnectionClosed

from tests.support.closing_server import closing_server
from tuner.load import LoadProfile, run_load
from tuner.load.keepalive import ResendingClient, ResendingClientPool
from tuner.process import free_port

BODY = b'{"text": "a fine film"}'


def post(client: HTTPClient) -> bytes:
    response = client.post("/predict", body=BODY)
    try:
        return response.read()
    finally:
        response.release()


def test_the_server_closing_a_reused_connection_fails_a_plain_client() -> None:
    # What the resend is for: without it, the second request on the connection fails.
    with closing_server(close_on=2) as server:
        client = HTTPClient("127.0.0.1", server.port, concurrency=1)
        assert b"prediction" in post(client)
        with pytest.raises(HTTPConnectionClosed):
            post(client)
        client.close()


def test_a_request_closed_unanswered_is_sent_again_on_a_new_connection(caplog) -> None:
    with closing_server(close_on=2) as server, caplog.at_level(logging.WARNING):
        client = ResendingClient("127.0.0.1", server.port, concurrency=1)
        assert b"prediction" in post(client)
        assert b"prediction" in post(client)  # closed unanswered, then answered on a new one
        client.close()
    assert (server.counts.connections, server.counts.requests) == (2, 3)
    assert (server.counts.answered, server.counts.closed_unanswered) == (2, 1)
    assert "event=request_resent" in caplog.text


def test_a_server_that_answers_nothing_is_asked_twice_not_more() -> None:
    with closing_server(close_on=1) as server:
        client = ResendingClient("127.0.0.1", server.port, concurrency=4)
        with pytest.raises(HTTPConnectionClosed):
            post(client)
        client.close()
    assert (server.counts.connections, server.counts.requests) == (2, 2)


def test_a_refused_connection_is_not_resent() -> None:
    client = ResendingClient("127.0.0.1", free_port(), concurrency=1)
    with pytest.raises(ConnectionRefusedError):
        post(client)


def test_a_timeout_is_not_resent() -> None:
    # The server may still be working on it: sending it again would double its load.
    with closing_server(answer=False) as server:
        client = ResendingClient("127.0.0.1", server.port, network_timeout=0.3, concurrency=1)
        with pytest.raises(TimeoutError):
            post(client)
        client.close()
        assert server.counts.connections == 1


def test_the_pool_makes_resending_clients_with_locusts_settings() -> None:
    pool = ResendingClientPool(concurrency=7, network_timeout=2.5, headers={"X-A": "1"})
    client = pool.get_client("http://127.0.0.1:9/predict")
    assert isinstance(client, ResendingClient)
    assert pool.get_client("http://127.0.0.1:9/other") is client
    assert client._connection_pool.size == 7 and client._connection_pool.network_timeout == 2.5
    pool.close()


def test_open_loop_load_counts_no_failure_for_connections_closed_unanswered(tmp_path: Path):
    # Every third request on a connection is closed unanswered: through Locust (our open-loop
    # user, the interval reporter) none of them may count as a failure.
    profile = LoadProfile(
        warmup_s=0.5, measure_s=1.5, interval_s=0.5, arrival="poisson", rate_rps=100
    )
    with closing_server(close_on=3) as server:
        result = run_load(profile, server.url, tmp_path)
    assert result.requests > 50
    assert result.failures == 0, result.failures_by_code
    assert server.counts.closed_unanswered > 10
    assert "event=request_resent" in (tmp_path / "locust.log").read_text()

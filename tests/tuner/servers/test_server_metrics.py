"""Parsing TF Serving's Prometheus text and the deltas the tuner records."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pytest

from model_server.metrics import ServerMetrics
from tuner.servers.binary import rest_answers
from tuner.servers.metrics import (
    MetricsError,
    mean_batch_size,
    parse,
    parse_samples,
    queue_full_count,
    request_count_delta,
    scrape,
)


def _buckets(name: str, counts: list[int]) -> str:
    """A batching_util.h histogram's 15 cumulative bucket lines: Exponential(1, 2, 14) limits
    written with absl::StrCat, the last (DBL_MAX) as +Inf; no labels, so only `le`."""
    limits = [str(2**i) for i in range(14)] + ["+Inf"]
    return "".join(
        f'{name}_bucket{{le="{le}"}} {count}\n' for le, count in zip(limits, counts, strict=True)
    )


P = ":tensorflow:serving:"
B = f"{P}batching_session:"

# Text as tensorflow_serving/util/prometheus_exporter.cc (2.19.0) writes it: metrics in the
# order of their TF names, a TYPE line each and no HELP, `{}` for unlabelled _sum/_count,
# TF's labels (request_count has no entrypoint; processed_batch_size has none at all).
BEFORE = (
    f"# TYPE {B}input_batch_size histogram\n"
    + _buckets(f"{B}input_batch_size", [0, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    + f"{B}input_batch_size_sum{{}} 6\n"
    + f"{B}input_batch_size_count{{}} 4\n"
    + f"# TYPE {B}processed_batch_size histogram\n"
    + _buckets(f"{B}processed_batch_size", [0, 0, 0, 1, 3, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4])
    + f"{B}processed_batch_size_sum{{}} 20\n"
    + f"{B}processed_batch_size_count{{}} 4\n"
    + f"# TYPE {B}queuing_latency histogram\n"
    + f"# TYPE {B}wrapped_run_count counter\n"
    + f"{B}wrapped_run_count{{}} 4\n"
    + f"# TYPE {P}request_count counter\n"
    + f'{P}request_count{{model_name="other",status="UNAVAILABLE"}} 99\n'
    + f'{P}request_count{{model_name="sentiment",status="OK"}} 12\n'
    + f"# TYPE {P}request_latency histogram\n"
)

AFTER = (
    f"# TYPE {B}processed_batch_size histogram\n"
    + _buckets(f"{B}processed_batch_size", [0, 0, 0, 1, 3, 10, 14, 14, 14, 14, 14, 14, 14, 14, 14])
    + f"{B}processed_batch_size_sum{{}} 340\n"
    + f"{B}processed_batch_size_count{{}} 14\n"
    + f"# TYPE {B}queuing_latency histogram\n"
    + f'{B}queuing_latency_sum{{thread_pool_name=""}} 5000\n'
    + f'{B}queuing_latency_count{{thread_pool_name=""}} 10\n'
    + f"# TYPE {P}request_count counter\n"
    + f'{P}request_count{{model_name="sentiment",status="OK"}} 112\n'
    + f'{P}request_count{{model_name="sentiment",status="UNAVAILABLE"}} 7\n'
)


def test_mean_batch_size_and_queue_full_from_tf_servings_page() -> None:
    before, after = parse(BEFORE, "sentiment"), parse(AFTER, "sentiment")
    assert mean_batch_size(before, after) == (340 - 20) / (14 - 4)
    assert queue_full_count(before, after) == 7
    assert request_count_delta(before, after, "OK") == 100
    assert after.has_batching and after.histogram_sums["queuing_latency"] == 5000.0


def test_the_embedded_servers_page_reads_the_same_way() -> None:
    # The embedded server renders the exporter's format itself; the tuner reads it alike.
    metrics = ServerMetrics("sentiment")
    before = parse(metrics.render(), "sentiment")
    assert not before.has_batching  # batching_util.h's series appear only after a batch
    for size in (3, 5):
        metrics.batching.record_input({"x": np.zeros((size, 2))})
    metrics.batching.record_batch(8, 0, (100.0, 200.0))
    metrics.batching.record_batch(4, 3, (50.0,))
    metrics.record_request("sentiment", "OK", 900)
    metrics.record_request("sentiment", "UNAVAILABLE", 10)
    metrics.record_request("other", "UNAVAILABLE", 10)
    after = parse(metrics.render(), "sentiment")
    assert mean_batch_size(before, after) == 6
    assert queue_full_count(before, after) == 1


def test_six_digit_sums_still_give_a_mean() -> None:
    # absl::StrCat(double) prints sums with six significant digits: 1234567 -> 1.23457e+06.
    page = f"{B}processed_batch_size_sum{{}} 1.23457e+06\n{B}processed_batch_size_count{{}} 10\n"
    zero = parse("", "sentiment")
    assert mean_batch_size(zero, parse(page, "sentiment")) == 123457.0


def test_without_batching_or_requests() -> None:
    empty = parse("", "sentiment")
    only_ok = parse(
        ':tensorflow:serving:request_count{model_name="sentiment",status="OK"} 3\n', "sentiment"
    )
    assert mean_batch_size(empty, only_ok) is None and not only_ok.has_batching
    assert queue_full_count(empty, empty) is None
    assert queue_full_count(empty, only_ok) == 0
    same = parse(AFTER, "sentiment")
    assert mean_batch_size(same, same) is None


def test_all_models_when_no_name_is_given() -> None:
    snapshot = parse(BEFORE)
    assert snapshot.histogram_counts["processed_batch_size"] == 4
    assert snapshot.request_count_by_status == {"OK": 12, "UNAVAILABLE": 99}


def test_label_values_with_escapes_and_odd_lines() -> None:
    samples = parse_samples(
        'm{a="x\\"y",b="1,2"} 3\ngarbage line here\nm_no_labels 4.5\nm{a="z"} NaN\n'
    )
    assert [(s.name, dict(s.labels), s.value) for s in samples[:2]] == [
        ("m", {"a": 'x"y', "b": "1,2"}, 3.0),
        ("m_no_labels", {}, 4.5),
    ]


@contextmanager
def _answering(reply: bytes) -> Iterator[str]:
    """A socket on 127.0.0.1 that sends `reply` to each request and hangs up, as a server
    killed mid-answer does."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(reply)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/monitoring/prometheus/metrics"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


CUT_SHORT = b"HTTP/1.1 200 OK\r\nContent-Length: 18957\r\n\r\n" + BEFORE.encode()[:100]


def test_a_page_cut_short_is_a_metrics_error_not_a_crash() -> None:
    # CI, 2026-12-07: a model server killed mid-scrape raised http.client.IncompleteRead
    # out of the trial, which is not an OSError.
    with _answering(CUT_SHORT) as url, pytest.raises(MetricsError, match="could not read"):
        scrape(url, timeout_s=5.0)


def test_a_garbled_answer_is_not_a_ready_rest_port() -> None:
    with _answering(b"not http at all\r\n\r\n") as url:
        assert rest_answers(url, timeout_s=0.3) is False

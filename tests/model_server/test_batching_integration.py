"""Server-side batching seen from outside: real server processes, TF Serving's own gRPC stubs,
many concurrent clients, and the batching_session histograms the server exports.

Every server here is module-scoped and shared by its tests, so metric checks compare a
scrape before and after the test's own traffic (deltas), never absolute values, except for
properties that must hold over the server's whole life (no batch ever above the limit).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from model_server.batching_parameters import BatchingParameters
from model_server.protos import predict_pb2, prediction_service_pb2_grpc
from service.corpus import generate
from service.text import Vocabulary
from tests.support.model_server import ModelServerProcess, running_model_server

MODEL = "sentiment"
QUEUE_FULL = "The batch scheduling queue to which this task was submitted is full"
PROCESSED = ":tensorflow:serving:batching_session:processed_batch_size"
INPUT = ":tensorflow:serving:batching_session:input_batch_size"
PADDING = ":tensorflow:serving:batching_session:padding_size"
QUEUING = ":tensorflow:serving:batching_session:queuing_latency"
REQUEST_COUNT = ":tensorflow:serving:request_count"
CLIENTS = 32
# Outputs of a row in a batch and alone may differ in the last bits (different kernel shapes).
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}

# --- clients and metrics, shared with test_lifecycle.py ------------------------------------


def predict_request(rows: np.ndarray, model: str = MODEL) -> predict_pb2.PredictRequest:
    """Raw tensor_content, as performance-minded TF Serving clients send it."""
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    tensor = request.inputs["tokens"]
    tensor.dtype = 3  # DT_INT32
    for size in rows.shape:
        tensor.tensor_shape.dim.add().size = size
    tensor.tensor_content = np.ascontiguousarray(rows, dtype="<i4").tobytes()
    return request


def probabilities(response: predict_pb2.PredictResponse) -> np.ndarray:
    import tensorflow as tf

    return tf.make_ndarray(response.outputs["probabilities"])


class Client:
    """Sync stubs on one channel; gRPC's sync stubs are safe to share between threads."""

    def __init__(self, target: str, options: Sequence[tuple[str, int]] = ()) -> None:
        self.channel = grpc.insecure_channel(target, options=list(options))
        self.stub = prediction_service_pb2_grpc.PredictionServiceStub(self.channel)

    def predict(self, rows: np.ndarray, timeout: float = 30.0) -> np.ndarray:
        return probabilities(self.stub.Predict(predict_request(rows), timeout=timeout))

    def try_predict(self, rows: np.ndarray) -> np.ndarray | grpc.RpcError:
        try:
            return self.predict(rows)
        except grpc.RpcError as exc:
            return exc

    def close(self) -> None:
        self.channel.close()


def run_concurrently(fn: Callable, items: Sequence, workers: int = CLIENTS) -> list:
    """Closed loop: `workers` clients, each sending its next request when answered."""
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, items))


@dataclass(frozen=True)
class Histogram:
    buckets: dict[float, float]  # upper bound -> cumulative count
    sum: float
    count: float

    def __sub__(self, before: Histogram) -> Histogram:
        return Histogram(
            {le: n - before.buckets.get(le, 0.0) for le, n in self.buckets.items()},
            self.sum - before.sum,
            self.count - before.count,
        )

    @property
    def mean(self) -> float:
        return self.sum / self.count


_SAMPLE = re.compile(r"^(?P<name>[^{\s]+)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


class Metrics:
    """One scrape of /monitoring/prometheus/metrics, parsed from the text format."""

    def __init__(self, text: str) -> None:
        self.samples: list[tuple[str, dict[str, str], float]] = []
        for line in text.splitlines():
            match = _SAMPLE.match(line)
            if line.startswith("#") or match is None:
                continue
            labels = dict(_LABEL.findall(match["labels"] or ""))
            self.samples.append((match["name"], labels, float(match["value"])))

    @classmethod
    def scrape(cls, rest_url: str) -> Metrics:
        response = httpx.get(f"{rest_url}/monitoring/prometheus/metrics", timeout=10)
        response.raise_for_status()
        return cls(response.text)

    def value(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 when none)."""
        return sum(
            value
            for sample, have, value in self.samples
            if sample == name and all(have.get(k) == v for k, v in labels.items())
        )

    def histogram(self, name: str) -> Histogram:
        """Summed over label sets: TF's batching series carry no model label."""
        buckets: dict[float, float] = {}
        for sample, labels, value in self.samples:
            if sample == f"{name}_bucket":
                le = float(labels["le"])
                buckets[le] = buckets.get(le, 0.0) + value
        return Histogram(buckets, self.value(f"{name}_sum"), self.value(f"{name}_count"))

    def executed_sizes(self) -> dict[int, float]:
        """Batches run per padded size: padding_size's execution_batch_size label says it
        exactly, where TF's histogram buckets (value < limit) cannot."""
        return {
            int(labels["execution_batch_size"]): value
            for sample, labels, value in self.samples
            if sample == f"{PADDING}_count"
        }


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rows(demo_model_dir: Path) -> np.ndarray:
    """64 realistic token rows; row i's reference output is row i sent alone."""
    vocab = Vocabulary.from_model_dir(demo_model_dir)
    return vocab.encode_batch([text for text, _ in generate(64, seed=7)])


def _serve(demo_model_dir: Path, **kwargs) -> Iterator[tuple[ModelServerProcess, Client]]:
    with running_model_server(demo_model_dir, **kwargs) as server:
        client = Client(server.grpc_target)
        try:
            yield server, client
        finally:
            client.close()


@pytest.fixture(scope="module")
def unbatched(demo_server):
    """The session's shared server without batching."""
    client = Client(demo_server.grpc_target)
    yield demo_server, client
    client.close()


@pytest.fixture(scope="module")
def expected(unbatched, rows) -> np.ndarray:
    """Each row's probabilities when it is sent alone to a server without batching."""
    _, client = unbatched
    return np.concatenate(run_concurrently(lambda i: client.predict(rows[i : i + 1]), range(64)))


@pytest.fixture(scope="module")
def plain(demo_model_dir):
    """Batches of at most 8 that wait up to 200 ms for company."""
    batching = BatchingParameters(
        max_batch_size=8, batch_timeout_micros=200_000, num_batch_threads=2, max_enqueued_batches=64
    )
    yield from _serve(demo_model_dir, batching=batching)


@pytest.fixture(scope="module")
def padded(demo_model_dir):
    """Padding to 4 or 8, and requests of up to 16 rows split into batches of at most 8.

    The list ends at max_batch_size, as bundle_factory_util.cc requires even with splitting;
    batches never exceed 8, so 16 is never used."""
    batching = BatchingParameters(
        max_batch_size=16,
        batch_timeout_micros=20_000,
        num_batch_threads=1,
        max_enqueued_batches=100,
        allowed_batch_sizes=(4, 8, 16),
        enable_large_batch_splitting=True,
        max_execution_batch_size=8,
    )
    yield from _serve(demo_model_dir, batching=batching)


@pytest.fixture(scope="module")
def tiny_queue(demo_model_dir):
    """Room for one running and one waiting request: anything more is rejected."""
    batching = BatchingParameters(
        max_batch_size=1, batch_timeout_micros=0, num_batch_threads=1, max_enqueued_batches=1
    )
    yield from _serve(demo_model_dir, batching=batching)


def _sized_requests(count: int, max_rows: int) -> list[tuple[int, int]]:
    """(first row, row count) pairs cycling through sizes 1..max_rows and all 64 rows."""
    requests = []
    for i in range(count):
        size = 1 + i % max_rows
        start = (i * 7) % (64 - size + 1)
        requests.append((start, size))
    return requests


def _check_outputs(client: Client, rows, expected, requests, workers: int = CLIENTS) -> None:
    def one(request: tuple[int, int]) -> None:
        start, size = request
        got = client.predict(rows[start : start + size])
        np.testing.assert_allclose(got, expected[start : start + size], **TOLERANCE)

    run_concurrently(one, requests, workers)


# --- batch formation ----------------------------------------------------------------------


def test_batches_hold_several_requests_under_load_and_never_exceed_max_batch_size(
    plain, rows, expected
) -> None:
    server, client = plain
    requests = _sized_requests(240, max_rows=3)
    before = Metrics.scrape(server.rest_url)
    _check_outputs(client, rows, expected, requests)
    after = Metrics.scrape(server.rest_url)

    processed = after.histogram(PROCESSED)
    assert max(after.executed_sizes()) <= 8, "a batch above max_batch_size ran"
    delta = processed - before.histogram(PROCESSED)
    assert delta.sum == sum(size for _, size in requests)  # no padding configured
    assert delta.count < len(requests) / 2, "batches did not gather several requests"
    assert delta.mean >= 2.0


def test_lone_request_waits_for_the_batch_timeout(plain, rows, expected) -> None:
    server, client = plain
    before = Metrics.scrape(server.rest_url)
    started = time.perf_counter()
    got = client.predict(rows[:1])
    elapsed = time.perf_counter() - started
    np.testing.assert_allclose(got, expected[:1], **TOLERANCE)
    assert elapsed >= 0.15  # batch_timeout_micros is 200 ms; only the lower bound is certain
    queuing = Metrics.scrape(server.rest_url).histogram(QUEUING) - before.histogram(QUEUING)
    assert queuing.count == 1 and queuing.sum >= 150_000  # microseconds


def test_request_larger_than_max_batch_size_is_invalid_argument(plain, rows) -> None:
    server, client = plain
    with pytest.raises(grpc.RpcError) as caught:
        client.predict(rows[:9])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "maximum input batch size 8" in caught.value.details()

    body = {"instances": rows[:9].tolist()}
    response = httpx.post(f"{server.rest_url}/v1/models/{MODEL}:predict", json=body, timeout=10)
    assert response.status_code == 400
    assert "maximum input batch size 8" in response.json()["error"]


# --- padding and splitting ----------------------------------------------------------------


def test_padding_to_allowed_batch_sizes_keeps_every_request_its_own_rows(
    padded, rows, expected
) -> None:
    server, client = padded
    # Three clients with one row each: every batch holds 1-3 requests and is padded to 4.
    requests = _sized_requests(120, max_rows=1)
    before = Metrics.scrape(server.rest_url)
    _check_outputs(client, rows, expected, requests, workers=3)
    after = Metrics.scrape(server.rest_url)

    processed = after.histogram(PROCESSED) - before.histogram(PROCESSED)
    inputs = after.histogram(INPUT) - before.histogram(INPUT)
    padding = after.histogram(PADDING) - before.histogram(PADDING)
    assert inputs.sum == len(requests)  # one input tensor: one observation per request
    assert processed.count < len(requests), "no batch held several requests"
    assert padding.count == processed.count and padding.buckets[1.0] == 0  # all padded
    assert processed.sum == 4 * processed.count == inputs.sum + padding.sum


def test_batches_never_exceed_the_execution_size_under_load(padded, rows, expected) -> None:
    server, client = padded
    requests = _sized_requests(240, max_rows=3)
    before = Metrics.scrape(server.rest_url)
    _check_outputs(client, rows, expected, requests)
    after = Metrics.scrape(server.rest_url)
    processed = after.histogram(PROCESSED)
    assert max(after.executed_sizes()) <= 8, "an executed batch exceeded 8"
    delta = processed - before.histogram(PROCESSED)
    inputs = after.histogram(INPUT) - before.histogram(INPUT)
    padding = after.histogram(PADDING) - before.histogram(PADDING)
    assert inputs.sum == sum(size for _, size in requests)
    assert delta.sum == inputs.sum + padding.sum
    # Every executed batch is 4 or 8 rows, and the sum adds up.
    sizes = after.executed_sizes()
    assert set(sizes) <= {4, 8}
    assert processed.sum == sum(size * count for size, count in sizes.items())


@pytest.mark.parametrize(("size", "executed", "pad"), [(1, 4, 3), (3, 4, 1), (5, 8, 3)])
def test_lone_request_is_padded_to_the_next_allowed_size(
    padded, rows, expected, size, executed, pad
) -> None:
    server, client = padded
    before = Metrics.scrape(server.rest_url)
    got = client.predict(rows[10 : 10 + size])
    np.testing.assert_allclose(got, expected[10 : 10 + size], **TOLERANCE)
    after = Metrics.scrape(server.rest_url)
    processed = after.histogram(PROCESSED) - before.histogram(PROCESSED)
    assert (processed.count, processed.sum) == (1, executed)
    assert (after.histogram(PADDING) - before.histogram(PADDING)).sum == pad


def test_large_request_is_split_into_execution_sized_batches(padded, rows, expected) -> None:
    server, client = padded
    before = Metrics.scrape(server.rest_url)
    got = client.predict(rows[20:33])  # 13 rows: more than max_execution_batch_size 8
    np.testing.assert_allclose(got, expected[20:33], **TOLERANCE)
    after = Metrics.scrape(server.rest_url)
    processed = after.histogram(PROCESSED)
    assert max(after.executed_sizes()) <= 8, "an executed batch exceeded 8"
    delta = processed - before.histogram(PROCESSED)
    assert delta.count >= 2
    assert (after.histogram(INPUT) - before.histogram(INPUT)).sum == 13


def test_request_above_max_batch_size_is_rejected_even_with_splitting(padded, rows) -> None:
    _, client = padded
    with pytest.raises(grpc.RpcError) as caught:
        client.predict(np.concatenate([rows[:9], rows[:8]]))  # 17 > max_batch_size 16
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT


# --- queue full ---------------------------------------------------------------------------


def test_full_queue_rejects_grpc_requests_with_tf_servings_message(tiny_queue, rows) -> None:
    server, client = tiny_queue
    before = Metrics.scrape(server.rest_url)
    results = run_concurrently(lambda i: client.try_predict(rows[i % 64 : i % 64 + 1]), range(160))
    errors = [r for r in results if isinstance(r, grpc.RpcError)]
    assert errors, "no request was rejected"
    assert len(errors) < len(results), "no request got through"
    assert {(e.code(), e.details()) for e in errors} == {(grpc.StatusCode.UNAVAILABLE, QUEUE_FULL)}
    after = Metrics.scrape(server.rest_url)
    rejected = after.value(REQUEST_COUNT, model_name=MODEL, status="UNAVAILABLE") - before.value(
        REQUEST_COUNT, model_name=MODEL, status="UNAVAILABLE"
    )
    assert rejected == len(errors)
    assert set(after.executed_sizes()) == {1}


def test_full_queue_answers_rest_with_503(tiny_queue, rows) -> None:
    server, _ = tiny_queue
    url = f"{server.rest_url}/v1/models/{MODEL}:predict"

    async def burst() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=64)
        async with httpx.AsyncClient(timeout=30, limits=limits) as http:
            responses: list[httpx.Response] = []
            for _ in range(5):  # a few bursts at most; one usually suffices
                responses = await asyncio.gather(
                    *(http.post(url, json={"instances": [rows[i].tolist()]}) for i in range(64))
                )
                if any(r.status_code == 503 for r in responses):
                    break
            return responses

    responses = asyncio.run(burst())
    statuses = {r.status_code for r in responses}
    assert 503 in statuses and statuses <= {200, 503}
    rejected = [r.json() for r in responses if r.status_code == 503]
    assert all(body == {"error": QUEUE_FULL} for body in rejected)


# --- no batching ----------------------------------------------------------------------------


def test_without_batching_every_request_runs_alone(unbatched, rows, expected) -> None:
    server, client = unbatched
    requests = _sized_requests(120, max_rows=4)
    before = Metrics.scrape(server.rest_url)
    _check_outputs(client, rows, expected, requests)
    after = Metrics.scrape(server.rest_url)
    ok = after.value(REQUEST_COUNT, status="OK") - before.value(REQUEST_COUNT, status="OK")
    assert ok == len(requests)
    # No batching session, so no batch-size series at all, as with TF Serving.
    assert not [name for name, _, _ in after.samples if name.startswith(PROCESSED)]
    assert "batching=off" in server.log_text()

"""TF Serving 2.19's request and batching metrics: names, labels, buckets, units, creation.

Where each comes from (tensorflow/serving at 2.19.0):
- servables/tensorflow/util.cc: `/tensorflow/serving/request_count` {model_name, status}
  counted for every Predict over gRPC (model_servers/prediction_service_impl.cc) and every
  REST call (model_servers/http_server.cc), status = the canonical code's name;
  `/tensorflow/serving/request_latency` {model_name, API, entrypoint} in microseconds,
  successes only, Exponential(10, 1.8, 33). Both are namespace-scope globals: registered
  (a bare TYPE line) from the start.
- batching/batching_session.cc: `queuing_latency` {thread_pool_name} per task, in
  microseconds, Exponential(100, 1.2, 52), thread_pool_name "" on the model-server path
  (CreateBatchingSession passes ""); `wrapped_run_count`, one per batch run. Globals too.
- batching/batching_util.h: `input_batch_size` (no labels, once per *input tensor* of a
  request, at Run time), `padding_size` {execution_batch_size} and `processed_batch_size`
  (no labels, the padded size), Exponential(1, 2, 14). Function-local statics: they only
  exist after the first request / batch, so a scrape before that does not show them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from model_server.prometheus import Counter, Histogram, Registry, exponential_buckets

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "QUEUING_LATENCY_BUCKETS",
    "REQUEST_LATENCY_BUCKETS",
    "BatchingMetrics",
    "ServerMetrics",
]

TF_PREFIX = "/tensorflow/serving/"
REQUEST_COUNT = TF_PREFIX + "request_count"
REQUEST_LATENCY = TF_PREFIX + "request_latency"
BATCHING = TF_PREFIX + "batching_session/"
QUEUING_LATENCY = BATCHING + "queuing_latency"
WRAPPED_RUN_COUNT = BATCHING + "wrapped_run_count"
INPUT_BATCH_SIZE = BATCHING + "input_batch_size"
PADDING_SIZE = BATCHING + "padding_size"
PROCESSED_BATCH_SIZE = BATCHING + "processed_batch_size"

BATCH_SIZE_BUCKETS = exponential_buckets(1, 2, 14)
QUEUING_LATENCY_BUCKETS = exponential_buckets(100, 1.2, 52)
REQUEST_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)


class BatchingMetrics:
    """The batching_session metrics of one process (TF's are process-wide, not per model)."""

    def __init__(self, registry: Registry | None = None, thread_pool_name: str = "") -> None:
        self.registry = registry if registry is not None else Registry()
        # Registered now (namespace-scope globals), but a cell exists only once recorded into.
        self._queuing_metric = self.registry.histogram(
            QUEUING_LATENCY, ("thread_pool_name",), QUEUING_LATENCY_BUCKETS
        )
        self._wrapped_metric = self.registry.counter(WRAPPED_RUN_COUNT)
        self._thread_pool_name = thread_pool_name
        self._input: Histogram | None = None
        self._padding: Histogram | None = None
        self._processed: Histogram | None = None

    def _input_histogram(self) -> Histogram:
        if self._input is None:
            self._input = self.registry.histogram(INPUT_BATCH_SIZE, (), BATCH_SIZE_BUCKETS)
        return self._input

    def record_input(self, inputs: Mapping[str, np.ndarray]) -> None:
        """ComputeInputSize: every input tensor's 0th dimension, once per request."""
        cell = self._input_histogram().labels()
        cell.observe_many(
            float(value.shape[0]) if np.ndim(value) else 0.0 for value in inputs.values()
        )

    def record_batch(
        self, processed_size: int, padding: int, queuing_latencies_us: Iterable[float]
    ) -> None:
        """One executed batch: per-task queueing delay, padding, the padded size, one run."""
        queuing = self._queuing_metric.labels(thread_pool_name=self._thread_pool_name)
        queuing.observe_many(int(v) for v in queuing_latencies_us)
        if self._processed is None:
            self._padding = self.registry.histogram(
                PADDING_SIZE, ("execution_batch_size",), BATCH_SIZE_BUCKETS
            )
            self._processed = self.registry.histogram(PROCESSED_BATCH_SIZE, (), BATCH_SIZE_BUCKETS)
        assert self._padding is not None
        self._padding.labels(execution_batch_size=str(processed_size)).observe(padding)
        self._processed.labels().observe(processed_size)
        self._wrapped_metric.labels().inc()


class ServerMetrics:
    """Everything `/monitoring/prometheus/metrics` shows."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.registry = Registry()
        self.request_count: Counter = self.registry.counter(REQUEST_COUNT, ("model_name", "status"))
        self.request_latency: Histogram = self.registry.histogram(
            REQUEST_LATENCY, ("model_name", "API", "entrypoint"), REQUEST_LATENCY_BUCKETS
        )
        # batching_session.cc's globals exist only in a binary that links batching, which the
        # model server always does; without --enable_batching they stay empty.
        self.batching = BatchingMetrics(self.registry)

    def record_request(
        self,
        model_name: str,
        status: str,
        latency_us: float,
        *,
        api: str = "Predict",
        entrypoint: str = "GRPC",
    ) -> None:
        """model_name as the request named it; status "OK" or a code name ("UNAVAILABLE")."""
        self.request_count.labels(model_name=model_name, status=status).inc()
        if status == "OK":
            self.request_latency.labels(
                model_name=model_name, API=api, entrypoint=entrypoint
            ).observe(int(latency_us))

    def render(self) -> str:
        return self.registry.render()

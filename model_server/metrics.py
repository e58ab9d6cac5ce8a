"""TF Serving's metrics, under TF Serving's names and labels (see model_server/prometheus.py
for the registry). The batcher records from its batch threads, so label lookups are resolved
once per model (`BatchingMetrics.for_model`) and the hot path stays a bisect and two adds.
"""

from __future__ import annotations

from collections.abc import Iterable

from model_server.prometheus import Registry

__all__ = [
    "BATCH_SIZE_BUCKETS",
    "LATENCY_US_BUCKETS",
    "PADDING_BUCKETS",
    "BatchingMetrics",
    "ModelBatchingMetrics",
    "ServerMetrics",
]

PREFIX = ":tensorflow:serving:"
REQUEST_COUNT = PREFIX + "request_count"
REQUEST_LATENCY = PREFIX + "request_latency"
PROCESSED_BATCH_SIZE = PREFIX + "batching_session:processed_batch_size"
INPUT_BATCH_SIZE = PREFIX + "batching_session:input_batch_size"
PADDING_SIZE = PREFIX + "batching_session:padding_size"
QUEUING_LATENCY = PREFIX + "batching_session:queuing_latency"

BATCH_SIZE_BUCKETS: tuple[float, ...] = tuple(float(2**i) for i in range(11))  # 1 .. 1024
PADDING_BUCKETS: tuple[float, ...] = (0.0, *BATCH_SIZE_BUCKETS)
LATENCY_US_BUCKETS: tuple[float, ...] = tuple(10.0 * 2**i for i in range(21))  # 10 us .. ~10.5 s


class ModelBatchingMetrics:
    """The four batching_session histograms, with the model's labels already resolved."""

    __slots__ = ("input_batch_size", "padding_size", "processed_batch_size", "queuing_latency")

    def __init__(self, metrics: BatchingMetrics, model_name: str) -> None:
        self.processed_batch_size = metrics.processed_batch_size.labels(model_name=model_name)
        self.input_batch_size = metrics.input_batch_size.labels(model_name=model_name)
        self.padding_size = metrics.padding_size.labels(model_name=model_name)
        self.queuing_latency = metrics.queuing_latency.labels(model_name=model_name)

    def record_batch(
        self, input_size: int, padding: int, queuing_latencies_us: Iterable[float]
    ) -> None:
        """One executed batch: sizes once per batch, queueing delay once per task."""
        self.input_batch_size.observe(input_size)
        self.padding_size.observe(padding)
        self.processed_batch_size.observe(input_size + padding)
        self.queuing_latency.observe_many(queuing_latencies_us)


class BatchingMetrics:
    """TF Serving's batching_session histograms; one instance per server, shared by batchers."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry if registry is not None else Registry()
        labels = ("model_name",)
        self.processed_batch_size = self.registry.histogram(
            PROCESSED_BATCH_SIZE,
            "Tracks the batch size distribution on processing (padding included).",
            labels,
            BATCH_SIZE_BUCKETS,
        )
        self.input_batch_size = self.registry.histogram(
            INPUT_BATCH_SIZE,
            "Tracks the batch size distribution on the inputs (before padding).",
            labels,
            BATCH_SIZE_BUCKETS,
        )
        self.padding_size = self.registry.histogram(
            PADDING_SIZE,
            "Tracks the padding size distribution on batches.",
            labels,
            PADDING_BUCKETS,
        )
        self.queuing_latency = self.registry.histogram(
            QUEUING_LATENCY,
            "Distribution of wall time spent (in microseconds) in queuing.",
            labels,
            LATENCY_US_BUCKETS,
        )

    def for_model(self, model_name: str) -> ModelBatchingMetrics:
        return ModelBatchingMetrics(self, model_name)


class ServerMetrics:
    """Everything `/monitoring/prometheus/metrics` shows for one served model."""

    def __init__(self, model_name: str) -> None:
        self.model_name = model_name
        self.registry = Registry()
        self.request_count = self.registry.counter(
            REQUEST_COUNT,
            "The total number of requests.",
            ("model_name", "entrypoint", "status"),
        )
        self.request_latency = self.registry.histogram(
            REQUEST_LATENCY,
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            ("model_name", "API", "entrypoint"),
            LATENCY_US_BUCKETS,
        )
        self.batching = BatchingMetrics(self.registry)

    def record_request(
        self, entrypoint: str, status: str, latency_us: float, *, api: str = "Predict"
    ) -> None:
        """entrypoint "GRPC" | "REST"; status "OK" or a gRPC code name such as "UNAVAILABLE"."""
        self.request_count.labels(
            model_name=self.model_name, entrypoint=entrypoint, status=status
        ).inc()
        self.request_latency.labels(
            model_name=self.model_name, API=api, entrypoint=entrypoint
        ).observe(latency_us)

    def render(self) -> str:
        return self.registry.render()

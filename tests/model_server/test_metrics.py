"""TF Serving's metric names and labels, as the tuner scrapes them."""

from __future__ import annotations

from model_server.metrics import (
    BATCH_SIZE_BUCKETS,
    LATENCY_US_BUCKETS,
    BatchingMetrics,
    ServerMetrics,
)


def test_server_metrics_use_tf_servings_names_and_labels() -> None:
    metrics = ServerMetrics("sentiment")
    metrics.record_request("GRPC", "OK", 1500)
    metrics.record_request("GRPC", "OK", 2500)
    metrics.record_request("REST", "UNAVAILABLE", 40, api="Predict")
    metrics.batching.for_model("sentiment").record_batch(3, 1, (10.0, 20.0, 30.0))
    text = metrics.render()
    lines = text.splitlines()
    assert (
        ':tensorflow:serving:request_count{model_name="sentiment",entrypoint="GRPC",status="OK"} 2'
        in lines
    )
    assert (
        ':tensorflow:serving:request_count{model_name="sentiment",entrypoint="REST",'
        'status="UNAVAILABLE"} 1' in lines
    )
    assert "_total" not in text
    assert (
        ':tensorflow:serving:request_latency_sum{model_name="sentiment",API="Predict",'
        'entrypoint="GRPC"} 4000' in lines
    )
    prefix = ":tensorflow:serving:batching_session:"
    for name, total, count in (
        ("processed_batch_size", 4, 1),
        ("input_batch_size", 3, 1),
        ("padding_size", 1, 1),
        ("queuing_latency", 60, 3),
    ):
        assert f'{prefix}{name}_sum{{model_name="sentiment"}} {total}' in lines
        assert f'{prefix}{name}_count{{model_name="sentiment"}} {count}' in lines
        assert f"# TYPE {prefix}{name} histogram" in lines
    assert "# TYPE :tensorflow:serving:request_count counter" in lines
    assert "# TYPE :tensorflow:serving:request_latency histogram" in lines
    assert text.endswith("\n")


def test_buckets_cover_batch_sizes_and_microsecond_latencies() -> None:
    assert BATCH_SIZE_BUCKETS[0] == 1 and BATCH_SIZE_BUCKETS[-1] >= 1024
    assert LATENCY_US_BUCKETS[0] == 10 and 10_000_000 <= LATENCY_US_BUCKETS[-1] < 20_000_000
    batching = BatchingMetrics()
    assert batching.registry.render().count("# TYPE") == 4  # declared before any observation

"""TF Serving 2.19's metric names, labels, buckets and creation times (see metrics.py)."""

from __future__ import annotations

import numpy as np

from model_server.metrics import (
    BATCH_SIZE_BUCKETS,
    QUEUING_LATENCY_BUCKETS,
    REQUEST_LATENCY_BUCKETS,
    ServerMetrics,
)

PREFIX = ":tensorflow:serving:"
BATCHING = PREFIX + "batching_session:"


def test_request_metrics_have_tf_servings_labels_and_count_failures_without_latency() -> None:
    # util.cc: request_count{model_name,status}; request_latency{model_name,API,entrypoint},
    # recorded only for OK (prediction_service_impl.cc, http_server.cc).
    metrics = ServerMetrics("sentiment")
    metrics.record_request("sentiment", "OK", 1500)
    metrics.record_request("sentiment", "OK", 2500.7)
    metrics.record_request("sentiment", "UNAVAILABLE", 40, api="predict", entrypoint="REST")
    lines = metrics.render().splitlines()
    assert f'{PREFIX}request_count{{model_name="sentiment",status="OK"}} 2' in lines
    assert f'{PREFIX}request_count{{model_name="sentiment",status="UNAVAILABLE"}} 1' in lines
    grpc = '{model_name="sentiment",API="Predict",entrypoint="GRPC"}'
    assert f"{PREFIX}request_latency_count{grpc} 2" in lines
    assert f"{PREFIX}request_latency_sum{grpc} 4000" in lines
    assert not any('entrypoint="REST"' in line for line in lines)  # the failure has no latency


def test_batching_series_are_created_lazily_as_in_batching_util() -> None:
    metrics = ServerMetrics("m")
    text = metrics.render()
    # Namespace-scope globals (util.cc, batching_session.cc) are registered from the start...
    for name in ("request_count", "request_latency"):
        assert f"# TYPE {PREFIX}{name}" in text
    assert f"# TYPE {BATCHING}queuing_latency histogram" in text
    assert f"# TYPE {BATCHING}wrapped_run_count counter" in text
    # ...but show no series until something is recorded into them...
    assert f"{BATCHING}queuing_latency_bucket" not in text
    assert f"{BATCHING}wrapped_run_count{{}}" not in text
    # ...and batching_util.h's function-local statics only after the first request / batch.
    for name in ("input_batch_size", "padding_size", "processed_batch_size"):
        assert f"{BATCHING}{name}" not in text


def test_batch_sizes_padding_and_queueing_as_batching_session_records_them() -> None:
    metrics = ServerMetrics("m")
    request = {"a": np.zeros((3, 2)), "b": np.zeros((3,))}
    metrics.batching.record_input(request)  # once per input tensor: two observations of 3
    metrics.batching.record_batch(4, 1, (150.0, 250.9, 90.0))
    lines = metrics.render().splitlines()
    assert f"{BATCHING}input_batch_size_count{{}} 2" in lines
    assert f"{BATCHING}input_batch_size_sum{{}} 6" in lines
    assert f"{BATCHING}processed_batch_size_sum{{}} 4" in lines  # the padded size
    assert f'{BATCHING}padding_size_sum{{execution_batch_size="4"}} 1' in lines
    assert f'{BATCHING}queuing_latency_count{{thread_pool_name=""}} 3' in lines
    assert f'{BATCHING}queuing_latency_sum{{thread_pool_name=""}} 490' in lines  # integer us
    assert f"{BATCHING}wrapped_run_count{{}} 1" in lines
    # A padded size of 4 is below the limit 8 and not below 4 (TF's upper_bound rule).
    assert f'{BATCHING}processed_batch_size_bucket{{le="4"}} 0' in lines
    assert f'{BATCHING}processed_batch_size_bucket{{le="8"}} 1' in lines


def test_bucket_layouts_are_tfs() -> None:
    assert tuple(float(2**i) for i in range(14)) == BATCH_SIZE_BUCKETS  # batching_util.h
    assert len(QUEUING_LATENCY_BUCKETS) == 52 and QUEUING_LATENCY_BUCKETS[0] == 100
    assert len(REQUEST_LATENCY_BUCKETS) == 33 and REQUEST_LATENCY_BUCKETS[0] == 10

"""The registry writes tensorflow_serving/util/prometheus_exporter.cc's page (2.19.0).

Each test names the exporter rule (or TF histogram rule) it checks.
"""

from __future__ import annotations

import threading

import pytest

from model_server.metrics import BATCH_SIZE_BUCKETS
from model_server.prometheus import Registry, exponential_buckets, prometheus_name


def test_metric_names_replace_every_non_word_character_with_a_colon() -> None:
    # GetPrometheusMetricName: [^a-zA-Z0-9_] -> ':'; a leading digit gets '_'.
    assert prometheus_name("/tensorflow/serving/request_count") == (
        ":tensorflow:serving:request_count"
    )
    assert prometheus_name("9lives/x-y") == "_9lives:x:y"


def test_histogram_buckets_follow_tf_histogram_and_the_exporter() -> None:
    # TF's Histogram counts a value in the first bucket whose limit is greater than it
    # (upper_bound), DBL_MAX is the last limit, written as le="+Inf"; SerializeHistogram
    # writes cumulative counts, then _sum and _count with the same labels; no HELP line.
    registry = Registry()
    hist = registry.histogram("/demo/latency", ("model_name",), (1, 2, 4))
    cell = hist.labels(model_name="m")
    for value in (0.5, 1, 3, 3, 100):
        cell.observe(value)
    assert registry.render() == (
        "# TYPE :demo:latency histogram\n"
        ':demo:latency_bucket{model_name="m",le="1"} 1\n'
        ':demo:latency_bucket{model_name="m",le="2"} 2\n'
        ':demo:latency_bucket{model_name="m",le="4"} 4\n'
        ':demo:latency_bucket{model_name="m",le="+Inf"} 5\n'
        ':demo:latency_sum{model_name="m"} 107.5\n'
        ':demo:latency_count{model_name="m"} 5\n'
    )


def test_unlabelled_series_keep_empty_braces_and_sums_have_six_digits() -> None:
    # SerializeHistogram joins no labels into "{}" for _sum/_count and "{le=...}" for
    # buckets; SerializeScalar writes "NAME{} N"; absl::StrCat(double) keeps 6 digits.
    registry = Registry()
    hist = registry.histogram("/b/size", (), (1,))
    hist.labels().observe(1234567)
    registry.counter("/b/runs").labels().inc(3)
    assert registry.render().splitlines() == [
        "# TYPE :b:runs counter",
        ":b:runs{} 3",
        "# TYPE :b:size histogram",
        ':b:size_bucket{le="1"} 0',
        ':b:size_bucket{le="+Inf"} 1',
        ":b:size_sum{} 1.23457e+06",
        ":b:size_count{} 1",
    ]


def test_registered_metrics_without_cells_show_only_their_type_line() -> None:
    registry = Registry()
    registry.counter("/a/count", ("status",))
    assert registry.render() == "# TYPE :a:count counter\n"


def test_label_values_escape_backslash_and_quote_only() -> None:
    # SanitizeLabelValue escapes \ and "; nothing else (a newline stays as it is).
    registry = Registry()
    counter = registry.counter("/hits", ("path",))
    counter.labels(path='b"\\').inc(2)
    counter.labels(path="a").inc()
    assert registry.render().splitlines() == [
        "# TYPE :hits counter",
        ':hits{path="a"} 1',
        ':hits{path="b\\"\\\\"} 2',
    ]
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels(path="a").inc(-1)


def test_exponential_buckets_are_tfs() -> None:
    # monitoring::Buckets::Exponential(scale, growth, n): scale * growth^i for i < n.
    assert exponential_buckets(1, 2, 14) == tuple(float(2**i) for i in range(14))
    limits = exponential_buckets(100, 1.2, 52)
    assert len(limits) == 52 and limits[0] == 100 and limits[1] == pytest.approx(120)


def test_wrong_labels_and_duplicate_names_are_refused() -> None:
    registry = Registry()
    hist = registry.histogram("h", ("model_name",), (1,))
    with pytest.raises(ValueError, match="takes labels"):
        hist.labels(model="m")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("h")
    with pytest.raises(ValueError, match="strictly increasing"):
        registry.histogram("bad", (), (2, 1))


def test_concurrent_observations_are_all_counted() -> None:
    registry = Registry()
    cell = registry.histogram("h", ("model_name",), BATCH_SIZE_BUCKETS).labels(model_name="m")

    def work() -> None:
        for i in range(5000):
            cell.observe(i % 7)
            cell.observe_many((1, 2))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert cell.count == 4 * 5000 * 3
    assert cell.sum == 4 * (sum(i % 7 for i in range(5000)) + 5000 * 3)
    assert 'h_bucket{model_name="m",le="+Inf"} 60000' in registry.render()

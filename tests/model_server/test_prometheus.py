"""The Prometheus registry: exposition format, label checks, thread safety."""

from __future__ import annotations

import threading

import pytest

from model_server.metrics import (
    BATCH_SIZE_BUCKETS,
)
from model_server.prometheus import Registry


def test_histogram_renders_cumulative_buckets_sum_and_count() -> None:
    registry = Registry()
    hist = registry.histogram("demo_seconds", "A demo.", ("model_name",), (1, 2, 4))
    child = hist.labels(model_name="m")
    for value in (0.5, 1, 3, 3, 100):
        child.observe(value)
    assert registry.render() == (
        "# HELP demo_seconds A demo.\n"
        "# TYPE demo_seconds histogram\n"
        'demo_seconds_bucket{model_name="m",le="1"} 2\n'
        'demo_seconds_bucket{model_name="m",le="2"} 2\n'
        'demo_seconds_bucket{model_name="m",le="4"} 4\n'
        'demo_seconds_bucket{model_name="m",le="+Inf"} 5\n'
        'demo_seconds_sum{model_name="m"} 107.5\n'
        'demo_seconds_count{model_name="m"} 5\n'
    )


def test_counter_renders_labels_escaped_and_sorted() -> None:
    registry = Registry()
    counter = registry.counter("hits", "Hits.", ("path",))
    counter.labels(path='b"\\\n').inc(2)
    counter.labels(path="a").inc()
    assert registry.render().splitlines() == [
        "# HELP hits Hits.",
        "# TYPE hits counter",
        'hits{path="a"} 1',
        'hits{path="b\\"\\\\\\n"} 2',
    ]
    with pytest.raises(ValueError, match="only goes up"):
        counter.labels(path="a").inc(-1)


def test_wrong_labels_and_duplicate_names_are_refused() -> None:
    registry = Registry()
    hist = registry.histogram("h", "H.", ("model_name",), (1,))
    with pytest.raises(ValueError, match="takes labels"):
        hist.labels(model="m")
    with pytest.raises(ValueError, match="already registered"):
        registry.counter("h", "Again.")
    with pytest.raises(ValueError, match="strictly increasing"):
        registry.histogram("bad", "Bad.", (), (2, 1))


def test_concurrent_observations_are_all_counted() -> None:
    registry = Registry()
    child = registry.histogram("h", "H.", ("model_name",), BATCH_SIZE_BUCKETS).labels(
        model_name="m"
    )

    def work() -> None:
        for i in range(5000):
            child.observe(i % 7)
            child.observe_many((1, 2))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert child.count == 4 * 5000 * 3
    assert child.sum == 4 * (sum(i % 7 for i in range(5000)) + 5000 * 3)
    assert 'h_bucket{model_name="m",le="+Inf"} 60000' in registry.render()

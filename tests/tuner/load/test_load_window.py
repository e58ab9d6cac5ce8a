"""Interval merging, exact window percentiles, the settling rule, failure names."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tuner.load.classify import classify_failure, error_code, from_dead_process, is_timeout
from tuner.load.runner import judge_saturation
from tuner.load.spec import IntervalSample, LoadProfile, LoadProfileError
from tuner.load.window import IntervalMerger, percentile, settling, window_figures


def line(source: int, index: int, latencies: list[float], codes: dict[str, int] | None = None):
    codes = codes or {}
    return {
        "source": source,
        "index": index,
        "requests": len(latencies),
        "failures": sum(codes.values()),
        "latencies_ms": latencies,
        "failures_by_code": codes,
    }


def sample(index: int, rps: float) -> IntervalSample:
    return IntervalSample(index, index + 1.0, False, int(rps), 0, rps, None, None, None, {})


@pytest.mark.parametrize("p", [1, 50, 90, 95, 99, 99.9, 100])
def test_percentile_is_nearest_rank(p: float) -> None:
    values = sorted(np.random.default_rng(7).exponential(20.0, size=1001).round(3).tolist())
    expected = float(np.percentile(values, p, method="inverted_cdf"))
    assert percentile(values, p) == expected


def test_percentile_of_nothing_is_none() -> None:
    assert percentile([], 95) is None
    assert percentile([4.0], 95) == 4.0


def test_merger_waits_for_every_process_and_keeps_order() -> None:
    merger = IntervalMerger(sources=2)
    assert merger.add(line(1, 0, [1.0])) == []
    assert merger.add(line(1, 1, [2.0])) == []
    done = merger.add(line(2, 0, [3.0, 4.0], {"timeout": 1}))
    assert [d.index for d in done] == [0]
    assert done[0].requests == 3 and done[0].failures == 1
    assert sorted(done[0].latencies_ms) == [1.0, 3.0, 4.0]
    assert merger.add(line(2, 1, []))[0].requests == 1
    # A repeated line from one source does not count twice.
    assert merger.add(line(1, 2, [5.0])) == []
    assert merger.add(line(1, 2, [5.0])) == []
    assert merger.add(line(2, 2, [6.0]))[0].requests == 2


def test_window_figures_use_every_request_not_interval_averages() -> None:
    merger = IntervalMerger(sources=1)
    fast = merger.add(line(1, 0, [1.0] * 99, {}))
    slow = merger.add(line(1, 1, [100.0], {"model_server_overloaded": 1}))
    figures = window_figures([*fast, *slow], interval_s=0.5)
    assert figures.requests == 100 and figures.failures == 1
    assert figures.duration_s == 1.0 and figures.rps == 100.0
    assert figures.p50_ms == 1.0 and figures.p99_ms == 1.0 and figures.error_rate == 0.01
    assert figures.failures_by_code == {"model_server_overloaded": 1}
    per_interval_mean_p99 = (1.0 + 100.0) / 2
    assert figures.p99_ms != per_interval_mean_p99


def test_settling_rule_is_max_over_min_of_last_three_within_ten_percent() -> None:
    settled, detail = settling([sample(0, 50), sample(1, 100), sample(2, 105), sample(3, 109.9)])
    assert settled and "max/min 1.099" in detail
    settled, detail = settling([sample(0, 100), sample(1, 100), sample(2, 111)])
    assert not settled and "1.110 > 1.10" in detail
    assert settling([sample(0, 100), sample(1, 100)])[0] is False
    assert settling([sample(0, 0), sample(1, 100), sample(2, 100)])[0] is False


@pytest.mark.parametrize(
    ("status", "body", "exception", "expected"),
    [
        (
            503,
            b'{"error": "x", "code": "model_server_overloaded"}',
            RuntimeError(),
            "model_server_overloaded",
        ),
        (504, b'{"error": "x", "code": "deadline_exceeded"}', RuntimeError(), "deadline_exceeded"),
        (500, b"boom", RuntimeError(), "http_500"),
        (404, b'["not", "an", "object"]', RuntimeError(), "http_404"),
        (0, None, TimeoutError("timed out"), "timeout"),
        (0, None, ConnectionRefusedError(111, "refused"), "connection"),
        (None, None, OSError("reset"), "connection"),
        (200, b"{}", RuntimeError("response has no prediction"), "invalid_response"),
    ],
)
def test_failures_are_named_by_the_service_code(status, body, exception, expected) -> None:
    assert classify_failure(status, body, exception) == expected


def test_timeouts_are_recognised_by_type_or_message() -> None:
    class Timeout(BaseException):  # the shape of gevent.Timeout
        pass

    assert is_timeout(Timeout()) and is_timeout(OSError("connection timed out"))
    assert not is_timeout(ConnectionResetError()) and not is_timeout(None)
    assert error_code(b'{"code": ""}') is None and error_code(b"\xff") is None


def test_saturation_from_locust_warning_or_cpu() -> None:
    warned = "WARNING/root: CPU usage above 90%! This may constrain your throughput"
    assert judge_saturation(warned, {})[0]
    busy, reason = judge_saturation("", {11: 40.0, 12: 93.0})
    assert busy and "process 12 used 93%" in reason
    assert judge_saturation("all fine", {11: 89.9}) == (False, None)


def test_profile_rules() -> None:
    profile = LoadProfile(warmup_s=1.5, measure_s=3, interval_s=0.5)
    assert (profile.warmup_intervals, profile.measure_intervals) == (3, 6)
    for bad in (
        {"measure_s": 2.2, "interval_s": 1.0},
        {"warmup_s": -1},
        {"users": 0},
        {"processes": 4, "users": 2},
        {"interval_s": 0},
        {"locustfile": "a,b.py"},
        {"texts_per_request": 0},
    ):
        with pytest.raises(LoadProfileError):
            LoadProfile(**bad)
    assert math.isclose(LoadProfile(measure_s=0.3, interval_s=0.1).measure_intervals, 3)


def open_line(source: int, step: int, index: int, arrivals: int, skipped: int, in_flight: int):
    return {
        **line(source, index, [1.0] * arrivals),
        "step": step,
        "target_rps": 10.0,
        "arrivals": arrivals,
        "skipped": skipped,
        "late": 1,
        "in_flight_max": in_flight,
    }


def test_merger_follows_steps_and_sums_arrivals() -> None:
    merger = IntervalMerger(sources=2)
    assert merger.add(open_line(1, 1, 0, 3, 0, 2)) == []  # a later step's line: not yet
    merger.begin(1)
    assert merger.add(open_line(1, 0, 5, 9, 0, 2)) == []  # the old step's leftovers
    assert merger.add(open_line(1, 1, 0, 3, 1, 2)) == []
    done = merger.add(open_line(2, 1, 0, 4, 2, 5))
    assert [(d.step, d.index, d.arrivals, d.skipped, d.late, d.in_flight_max) for d in done] == [
        (1, 0, 7, 3, 2, 7)
    ]
    sample = done[0].to_sample(0.5, 1, first_index=10, t0_s=4.0)
    assert (sample.index, sample.t_s, sample.step, sample.in_warmup) == (10, 4.5, 1, True)
    assert sample.offered_rps == 14.0 and sample.target_rps == 10.0


def test_window_figures_count_arrivals_only_in_open_loop() -> None:
    merger = IntervalMerger(sources=1)
    open_data = [d for i in range(2) for d in merger.add(open_line(1, 0, i, 5, i, 3 + i))]
    figures = window_figures(open_data, 1.0)
    assert (figures.arrivals, figures.skipped, figures.late, figures.in_flight_max) == (10, 1, 2, 4)
    closed = window_figures(IntervalMerger(sources=1).add(line(1, 0, [1.0])), 1.0)
    assert closed.arrivals is None and closed.skipped is None and closed.in_flight_max is None


@pytest.mark.parametrize(
    ("failures_by_code", "dead"),
    [
        ({"connection": 40}, True),  # refused and reset: nothing listens any more
        ({"connection": 20, "timeout": 20}, True),
        ({"connection": 3, "model_server_unavailable": 90}, False),  # a live service's errors
        ({"timeout": 50}, False),  # late, not gone
        ({}, False),
    ],
)
def test_a_step_failing_on_connection_errors_points_at_a_dead_process(
    failures_by_code, dead
) -> None:
    assert from_dead_process(failures_by_code) is dead

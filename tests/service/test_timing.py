"""Server-Timing rendering and parsing."""

from __future__ import annotations

from service.timing import RequestTimings
from tests.support.server_timing import parse_server_timing


def test_server_timing_has_every_measured_part_in_ms() -> None:
    timings = RequestTimings()
    timings.preprocess, timings.inference, timings.postprocess = 0.0005, 0.003, 0.0001
    timings.total = 0.004
    header = timings.server_timing()
    assert parse_server_timing(header) == {
        "preprocess": 0.5,
        "inference": 3.0,
        "postprocess": 0.1,
        "total": 4.0,
    }
    fields = timings.log_fields()
    assert fields == {
        "preprocess_ms": 0.5,
        "inference_ms": 3.0,
        "postprocess_ms": 0.1,
        "total_ms": 4.0,
    }


def test_parts_never_reached_are_left_out() -> None:
    timings = RequestTimings()
    timings.preprocess = 0.001
    timings.finish()
    assert set(parse_server_timing(timings.server_timing())) == {"preprocess", "total"}
    assert timings.total is not None and timings.total >= 0

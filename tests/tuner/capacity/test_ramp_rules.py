"""When the ramp before a restarted server's first measured step counts an interval as settled,
as steady over the SLO, and how long it may last (tuner/capacity/ramp.py); the ramp against real
targets is in test_ramp.py."""

from __future__ import annotations

from dataclasses import replace

from tests.tuner.capacity.test_known_capacity import CRITERIA, PROFILE
from tuner.capacity.ramp import bound_intervals, over_slo, settled
from tuner.load import IntervalSample


def interval(
    p95: float | None, in_flight: int = 3, skipped: int = 0, failures: int = 0
) -> IntervalSample:
    return IntervalSample(
        index=0, t_s=1.0, in_warmup=False, requests=100, failures=failures, rps=100.0,
        p50_ms=p95, p95_ms=p95, p99_ms=p95, in_flight_max=in_flight, skipped=skipped,
    )  # fmt: skip


def test_an_interval_is_settled_within_the_slo_and_no_longer_falling() -> None:
    slo = CRITERIA.slo_ms  # 30 ms
    assert settled(interval(10.0), interval(12.0), 100.0, CRITERIA)  # rising with the rate
    assert settled(interval(10.0), interval(8.0), 100.0, CRITERIA)  # within the tolerance
    assert not settled(interval(20.0), interval(10.0), 100.0, CRITERIA)  # still warming
    assert not settled(interval(10.0), interval(slo + 1), 100.0, CRITERIA)  # over the SLO
    assert not settled(None, interval(10.0), 100.0, CRITERIA)  # nothing to compare with
    assert settled(interval(None), interval(10.0), 100.0, CRITERIA)  # answers at last
    assert not settled(interval(10.0), interval(None), 100.0, CRITERIA)
    # the ramp's leftovers: 100 req/s at 30 ms keeps ~3 in flight, 60 is a backlog
    assert not settled(interval(10.0), interval(12.0, in_flight=60), 100.0, CRITERIA)
    assert not settled(interval(10.0), interval(12.0, skipped=5), 100.0, CRITERIA)
    assert not settled(interval(10.0), interval(12.0, failures=2), 100.0, CRITERIA)  # > 1%
    assert settled(interval(10.0), interval(12.0, failures=1), 100.0, CRITERIA)
    # without criteria only the trend counts
    assert settled(interval(10.0), interval(500.0, in_flight=60), 100.0, None)


def test_two_intervals_over_the_slo_not_falling_are_steady_over_it() -> None:
    slo = CRITERIA.slo_ms  # 30 ms
    assert over_slo(interval(80.0), interval(85.0), CRITERIA)
    assert over_slo(interval(80.0), interval(70.0), CRITERIA)  # within the tolerance
    assert not over_slo(interval(300.0), interval(80.0), CRITERIA)  # warming
    assert not over_slo(interval(80.0), interval(slo - 1), CRITERIA)
    assert not over_slo(interval(slo - 1), interval(80.0), CRITERIA)  # one interval is not two
    assert not over_slo(interval(80.0), interval(None), CRITERIA)  # no answer, no trend
    assert not over_slo(interval(80.0), interval(85.0), None)  # no SLO known


def test_the_bound_derives_from_the_step_warmup() -> None:
    assert bound_intervals(replace(PROFILE, warmup_s=1.0)) == 4  # never fewer than 4
    assert bound_intervals(replace(PROFILE, warmup_s=4.0)) == 12  # three warm-ups

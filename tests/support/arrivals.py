"""What the open-loop generator must send: the test oracle built from the arrival process."""

from __future__ import annotations

from tuner.load.arrivals import process_rate, step_arrivals


def arrival_counts(
    rate_rps: float,
    processes: int,
    interval_s: float,
    intervals: int,
    window_start_s: float,
    window_s: float,
) -> list[int]:
    """How many arrivals all processes schedule in each of a step's first `intervals`
    intervals at a total `rate_rps`: exactly what the generator must send when the ceiling
    is not reached."""
    counts = [0] * intervals
    end = interval_s * intervals
    rate = process_rate(rate_rps, processes)
    for index in range(processes):
        for t in step_arrivals(rate, index, window_start_s, window_s):
            if t >= end:
                break
            counts[int(t / interval_s)] += 1
    return counts

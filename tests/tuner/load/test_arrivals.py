"""The arrival process itself: Poisson gaps, pinned window counts, the split, the control file."""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path

import numpy as np
import pytest

from tests.support.arrivals import arrival_counts
from tuner.load.arrivals import (
    PoissonArrivals,
    poisson_noise,
    process_rate,
    scheduled_count,
    share,
    step_arrivals,
)
from tuner.load.control import Step, StepReader, write_step


def test_gaps_are_exponential_at_the_rate() -> None:
    stream = PoissonArrivals(250.0, "gaps")
    times = [next(stream) for _ in range(20000)]
    gaps = np.diff([0.0, *times])
    assert abs(gaps.mean() - 1 / 250.0) < 0.03 / 250.0
    # Exponential: the standard deviation equals the mean, and P(gap > mean) = 1/e.
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.03
    assert abs((gaps > gaps.mean()).mean() - math.exp(-1)) < 0.015
    assert all(b > a for a, b in itertools.pairwise(times))


def window(stream, start: float, end: float) -> list[float]:
    return [t for t in itertools.takewhile(lambda t: t < end, stream) if t >= start]


def test_same_rate_same_arrivals_other_process_other_arrivals() -> None:
    first = list(itertools.islice(step_arrivals(100.0, 0, 1.0, 2.0), 1000))
    assert first == list(itertools.islice(step_arrivals(100.0, 0, 1.0, 2.0), 1000))
    assert first != list(itertools.islice(step_arrivals(100.0, 1, 1.0, 2.0), 1000))
    assert all(b > a for a, b in itertools.pairwise(first))


@pytest.mark.parametrize(("rate", "span"), [(20.0, 2.0), (100.0, 3.0), (900.0, 4.0), (250.0, 0.5)])
def test_window_count_is_exactly_rate_times_window(rate: float, span: float) -> None:
    for index in range(3):
        assert len(window(step_arrivals(rate, index, 1.0, span), 1.0, 1.0 + span)) == rate * span


def test_fractional_window_counts_round_at_random_without_bias() -> None:
    counts = [len(window(step_arrivals(2.5, i, 0.5, 1.0), 0.5, 1.5)) for i in range(400)]
    assert set(counts) == {2, 3}
    assert abs(statistics.mean(counts) - 2.5) < 0.1


def test_warm_up_and_after_the_window_are_plain_poisson() -> None:
    # Over many streams, the warm-up's and the after-window's counts vary like Poisson's.
    warm = [len(window(step_arrivals(50.0, i, 2.0, 1.0), 0.0, 2.0)) for i in range(300)]
    after = [len(window(step_arrivals(50.0, i, 2.0, 1.0), 3.0, 5.0)) for i in range(300)]
    for counts in (warm, after):
        mean, var = statistics.mean(counts), statistics.pvariance(counts)
        assert abs(mean - 100.0) < 2.5 and 0.75 < var / mean < 1.3


def test_pinned_windows_are_still_poisson_inside() -> None:
    # Given its count, a Poisson window's sub-interval counts have variance ~ mean.
    counts = []
    for index in range(200):
        times = window(step_arrivals(200.0, index, 0.0, 2.0), 0.0, 2.0)
        counts += np.histogram(times, bins=20, range=(0.0, 2.0))[0].tolist()
    mean, var = statistics.mean(counts), statistics.pvariance(counts)
    assert mean == 20.0
    assert 0.85 < var / mean < 1.1  # evenly spaced arrivals would have variance ~0


def test_rates_and_ceilings_split_without_loss() -> None:
    assert [share(256, 3, i) for i in range(3)] == [86, 85, 85]
    assert sum(share(10, 4, i) for i in range(4)) == 10
    assert process_rate(300.0, 2) == 150.0
    both = arrival_counts(300.0, 2, 0.5, 6, 1.0, 2.0)
    per_process = [[0] * 6, [0] * 6]
    for index in range(2):
        for t in step_arrivals(150.0, index, 1.0, 2.0):
            if t >= 3.0:
                break
            per_process[index][int(t / 0.5)] += 1
    assert both == [a + b for a, b in zip(*per_process, strict=True)]
    assert per_process[0] != per_process[1]  # independent streams, not one stream twice
    assert abs(sum(both[2:]) - 600) <= 6


def test_poisson_noise() -> None:
    assert poisson_noise(100.0, 10.0) == pytest.approx(1 / math.sqrt(1000))


def test_control_file_is_read_once_per_new_step(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    reader = StepReader(path)
    assert reader.poll() is None
    first = Step(0, 100.0, 12.5, 1.0, 2.0)
    write_step(path, first)
    assert reader.poll() == first
    assert reader.poll() is None
    second = Step(1, 50.0, 20.0, 0.5, 1.0)
    write_step(path, second)
    assert reader.poll() == second
    write_step(path, first)  # an older step never goes back
    assert reader.poll() is None


@pytest.mark.parametrize("processes", [1, 3])
def test_the_schedule_count_of_any_measured_intervals(processes: int) -> None:
    """What the tuner reads as "due": the window alone holds rate x window exactly; an
    extended window or one cut short holds what the draw put there, counted as the recorder
    counts arrivals (by interval) and summed over the processes' own streams."""
    counts = arrival_counts(30.0, processes, 0.5, 8, 0.5, 1.5)
    window = scheduled_count(30.0, processes, 0.5, 1.5, 0.5, range(1, 4))
    assert window == sum(counts[1:4]) == 45
    assert scheduled_count(30.0, processes, 0.5, 1.5, 0.5, range(1, 8)) == sum(counts[1:8])
    assert scheduled_count(30.0, processes, 0.5, 1.5, 0.5, range(1, 2)) == counts[1]
    assert scheduled_count(30.0, processes, 0.5, 1.5, 0.5, range(1, 1)) == 0
    assert scheduled_count(0.0, processes, 0.5, 1.5, 0.5, range(1, 4)) == 0

"""The surface file: written and read back alike; a malformed one is one sentence, exit 2."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest

from bench.replay import main
from bench.surface_file import ROUNDS_SCALED, Surface, SurfaceError, read_surface, write_surface
from tests.support.surfaces import BEST, small_surface

HEADER = "max_batch_size,capacity_rps,ci_low,ci_high,repeat,seconds,pruned"


def test_a_written_surface_reads_back_with_its_best_and_the_no_batching_row(tmp_path) -> None:
    path, written = small_surface(tmp_path)
    surface = read_surface(path)
    assert surface.space == "small.toml"
    assert surface.params == ["max_batch_size", "batch_timeout_micros", "num_batch_threads"]
    assert surface.as_params(surface.best_key) == BEST
    assert len(surface.points) == 12 + 1 and () in surface.points
    assert [r.repeat for r in surface.points[surface.best_key]] == [0, 1]
    assert surface.capacity(surface.best_key) == pytest.approx(written.best, abs=0.1)
    low, high = surface.interval(surface.best_key)
    assert low < surface.best < high


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "holds no measurement"),
        ("max_batch_size,capacity_rps,repeat\n8,10,0\n", "the header must be"),
        (f"{HEADER}\n8,100,,,0,30\n", "has 6 cells, the header 7"),
        (f"{HEADER}\n8,fast,,,0,30,0\n", "capacity_rps must be a number"),
        (f"{HEADER}\n8,-5,,,0,30,0\n", "capacity_rps must be a number >= 0"),
        (f"{HEADER}\n8,100,,,0.5,30,0\n", "repeat must be a whole number"),
        (f"{HEADER}\n8,100,,,0,30,yes\n", "pruned must be 0 or 1"),
        (f"{HEADER}\n8,0,,,0,30,0\n", "no point has a capacity above 0"),
    ],
)
def test_a_malformed_surface_is_one_sentence(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"# space: quick\n{text}")
    with pytest.raises(SurfaceError) as error:
        read_surface(path)
    message = str(error.value)
    assert says in message and "\n" not in message


def test_the_replay_rejects_a_malformed_surface_in_one_line_exit_2(tmp_path, capsys) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(f"{HEADER}\n8,100,,,0,30,maybe\n")
    assert main(["--surface", str(path), "--seeds", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "line 2: pruned must be 0 or 1" in err
    assert len(err.splitlines()) == 1
    assert main(["--surface", str(tmp_path / "none.csv")]) == 2
    assert "there is no surface file at" in capsys.readouterr().err


def test_a_surface_that_misses_points_of_its_space_is_refused(tmp_path, capsys) -> None:
    path, _ = small_surface(tmp_path)
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("128,1000,2,")))
    assert main(["--surface", str(path), "--seeds", "1", "--sampler", "random"]) == 2
    assert "the surface misses 1 of the 13 points" in capsys.readouterr().err


def test_rounds_recorded_in_sittings_of_different_speed_are_scaled_to_round_0(tmp_path) -> None:
    """A second round on a machine 40% slower: read as it was recorded, the best point's
    repeats disagree by 40%; with `# rounds: scaled` (what bench/surface.py writes) each round
    is in round 0's units and the best and its margin are round 0's."""
    _, written = small_surface(tmp_path)
    slower = Surface(list(written.params), space=written.space)
    for key, rows in written.points.items():
        slower.points[key] = [
            dataclasses.replace(r, capacity_rps=r.capacity_rps * (0.6 if r.repeat else 1.0))
            for r in rows
        ]
    as_recorded, scaled = tmp_path / "as-recorded.csv", tmp_path / "scaled.csv"
    write_surface(as_recorded, slower)
    write_surface(scaled, slower, [ROUNDS_SCALED + " to round 0 when read"])

    raw = read_surface(as_recorded)
    assert raw.round_factors == {}
    key = written.key_of(BEST)
    assert [r.capacity_rps for r in raw.points[key]] == pytest.approx(
        [r.capacity_rps * (0.6 if r.repeat else 1.0) for r in written.points[key]]
    )

    read = read_surface(scaled)
    assert read.round_factors[0] == 1.0
    assert read.round_factors[1] == pytest.approx(0.6, rel=0.05)  # the 2% noise aside
    assert read.as_params(read.best_key) == BEST
    for key, rows in written.points.items():
        assert [r.capacity_rps for r in read.points[key]] == pytest.approx(
            [r.capacity_rps for r in rows], rel=0.05
        )


def test_a_round_sharing_too_few_points_with_round_0_is_left_as_it_is(tmp_path) -> None:
    path = tmp_path / "few.csv"
    rows = "".join(f"{size},{100 * size},,,0,30,0\n" for size in (8, 16, 32))
    path.write_text(f"# {ROUNDS_SCALED}\n{HEADER}\n{rows}8,400,,,1,30,0\n")
    read = read_surface(path)
    assert read.round_factors == {0: 1.0}
    assert [r.capacity_rps for r in read.points[(8,)]] == [800, 400]


def test_the_surface_says_how_far_two_searches_of_a_point_differ(tmp_path) -> None:
    """Two repeats a factor e^0.2 apart at every point: a log sd of 0.2/sqrt(2) about their
    means; the best's mean of two is then known to 1.96 x 0.141 / sqrt(2) in log."""
    path = tmp_path / "noisy.csv"
    rows = [
        f"{size},{c},,,0,40,0\n{size},{c * math.exp(0.2)},,,1,40,0"
        for size, c in ((8, 500.0), (32, 900.0), (128, 700.0))
    ]
    path.write_text(f"# space: x\n{HEADER}\n" + "\n".join(rows) + "\n")
    surface = read_surface(path)
    assert surface.repeat_cv() == pytest.approx(0.2 / math.sqrt(2))
    expected = 1 - math.exp(-1.96 * (0.2 / math.sqrt(2)) / math.sqrt(2))
    assert surface.noise_floor() == pytest.approx(expected)
    one_round = Surface(surface.params, {k: v[:1] for k, v in surface.points.items()})
    assert one_round.repeat_cv() is None and one_round.noise_floor() == 0.0


def test_the_surface_says_how_often_a_searchs_interval_holds_the_other_search(tmp_path) -> None:
    """Point 8: each interval holds the other's capacity; point 32: only the open-above one
    does; point 128's second search has no interval and counts only as the one measured."""
    path = tmp_path / "intervals.csv"
    path.write_text(
        f"# space: x\n{HEADER}\n"
        "8,500,450,550,0,40,0\n8,520,470,570,1,40,0\n"
        "32,900,850,950,0,40,0\n32,1000,900,,1,40,0\n"
        "128,700,600,800,0,40,0\n128,650,,,1,40,0\n"
    )
    surface = read_surface(path)
    assert surface.interval_holds_repeat() == pytest.approx(4 / 5)
    one_round = Surface(surface.params, {k: v[:1] for k, v in surface.points.items()})
    assert one_round.interval_holds_repeat() is None

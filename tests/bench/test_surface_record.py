"""The surface recorder's bookkeeping on a scripted study: rounds queued once, each point's
repeats numbered in the order they ran, and a second run queueing only what is missing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna
import pytest

from bench.surface import carried_rows, grid_points, open_surface_study, queue_missing, surface_of
from bench.surface_file import SurfaceError, read_surface, write_surface
from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.studies import config_for
from tuner.study.run import load_search_space, optimize


def knee(batching, flags, rate) -> Served:
    capacity = 50.0 if batching is None else 2.0 * batching.max_batch_size
    return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)


def sitting(tmp_path: Path, name: str):
    """A recorder's config and space in a directory of its own, as another checkout would have;
    the model directory is shared."""
    (tmp_path / name).mkdir()
    (tmp_path / "model").mkdir(exist_ok=True)
    config = config_for(tmp_path / name)
    config.load.mode, config.confirm.top_k = "capacity", 0
    config.server.model_base_path = str(tmp_path / "model")
    return config, load_search_space(config)


def test_each_point_is_searched_twice_and_a_rerun_queues_only_what_is_missing(
    tmp_path: Path,
) -> None:
    config, space = sitting(tmp_path, "day1")
    points = [{}, *grid_points(space)[:2]]
    assert len(grid_points(space)) == 144
    study = open_surface_study(config, space)
    assert queue_missing(study, space, points, repeats=2, seed=0) == 6
    waiting = study.get_trials(states=[optuna.trial.TrialState.WAITING])
    first_round = [str(t.system_attrs["fixed_params"]) for t in waiting[:3]]
    assert len(set(first_round)) == 3  # a round measures every point once
    assert queue_missing(study, space, points, repeats=2, seed=0) == 0

    config.study.n_trials = 4  # stopped after four searches
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    assert queue_missing(study, space, points, repeats=2, seed=0) == 0  # two still queued
    assert queue_missing(study, space, points, repeats=3, seed=0) == 3
    config.study.n_trials = 9
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))

    surface = surface_of(study, space, "quick")
    assert Counter(len(rows) for rows in surface.points.values()) == {3: 3}
    assert [r.repeat for r in surface.points[()]] == [0, 1, 2]
    key = next(k for k in surface.points if k)
    capacity = 2.0 * surface.as_params(key)["max_batch_size"]
    assert all(abs(r.capacity_rps - capacity) / capacity < 0.1 for r in surface.points[key])
    assert all(r.ci_low is not None and not r.pruned for r in surface.points[key])


def test_a_new_checkout_carries_the_committed_file_over_and_records_only_what_it_misses(
    tmp_path: Path,
) -> None:
    """The study is git-ignored, the CSV committed: a second sitting elsewhere starts from the
    file, adds round 1 after its round 0, and a resumed study never counts its rows twice."""
    out = tmp_path / "surface.csv"
    config, space = sitting(tmp_path, "day1")
    points = [{}, *grid_points(space)[:2]]
    study = open_surface_study(config, space)
    carried = carried_rows(study, out, space, "quick")
    assert carried.points == {}
    assert queue_missing(study, space, points, repeats=1, seed=0, carried=carried) == 3
    config.study.n_trials = 3
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    write_surface(out, surface_of(study, space, "quick", carried))

    config, space = sitting(tmp_path, "day2")
    study = open_surface_study(config, space)
    carried = carried_rows(study, out, space, "quick")
    assert Counter(len(rows) for rows in carried.points.values()) == {1: 3}
    assert queue_missing(study, space, points, repeats=2, seed=0, carried=carried) == 3
    config.study.n_trials = 3
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    write_surface(out, surface_of(study, space, "quick", carried))

    again = carried_rows(study, out, space, "quick")  # the same study resumed: its own rows
    assert again.points == carried.points  # are in the file now, yet not carried twice
    assert queue_missing(study, space, points, repeats=2, seed=0, carried=again) == 0
    surface = read_surface(out)
    assert Counter(len(rows) for rows in surface.points.values()) == {2: 3}
    assert all([r.repeat for r in rows] == [0, 1] for rows in surface.points.values())


def test_a_file_of_another_space_is_refused_in_one_sentence(tmp_path: Path) -> None:
    out = tmp_path / "surface.csv"
    out.write_text(
        "max_batch_size,capacity_rps,ci_low,ci_high,repeat,seconds,pruned\n8,9,,,0,1,0\n"
    )
    config, space = sitting(tmp_path, "day1")
    with pytest.raises(SurfaceError, match="holds a surface of other parameters"):
        carried_rows(open_surface_study(config, space), out, space, "quick")

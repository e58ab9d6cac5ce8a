"""The surface recorder's bookkeeping on a scripted study: rounds queued once, each point's
repeats numbered in the order they ran, and a second run queueing only what is missing."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import optuna

from bench.surface import grid_points, open_surface_study, queue_missing, surface_of
from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.studies import config_for
from tuner.study.run import load_search_space, optimize


def knee(batching, flags, rate) -> Served:
    capacity = 50.0 if batching is None else 2.0 * batching.max_batch_size
    return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)


def test_each_point_is_searched_twice_and_a_rerun_queues_only_what_is_missing(
    tmp_path: Path,
) -> None:
    config = config_for(tmp_path)
    config.load.mode, config.confirm.top_k = "capacity", 0
    (tmp_path / "model").mkdir()
    config.server.model_base_path = str(tmp_path / "model")
    space = load_search_space(config)
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

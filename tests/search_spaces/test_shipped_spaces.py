"""The shipped spaces load, and every configuration they suggest is one TF Serving accepts."""

from __future__ import annotations

import itertools
import warnings
from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, parse_text, render
from search_spaces import SearchSpace, SearchSpaceError, Suggestion, available_spaces, load_space
from search_spaces.strategies import allowed_batch_sizes

optuna.logging.set_verbosity(optuna.logging.WARNING)

SHIPPED = ["cpu", "gpu", "quick"]


def _assert_valid(space: SearchSpace, suggestion: Suggestion) -> None:
    assert isinstance(suggestion.batching, BatchingParameters)  # validated on construction
    # What the tuner writes for the server parses back to the same parameters.
    assert parse_text(render(suggestion.batching)) == suggestion.batching
    for flag, value in suggestion.server_flags.items():
        assert flag.startswith(("tensorflow_", "rest_api_"))
        assert int(value) >= 0 and str(int(value)) == value
    assert list(suggestion.params) == space.param_names


def test_available_spaces_default_first() -> None:
    assert available_spaces() == SHIPPED


def test_shipped_space_by_file_name_or_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert load_space("quick.toml").source == load_space("quick").source
    (tmp_path / "quick.toml").write_text("[batching]\nmax_batch_size = 16\n")
    local = load_space("quick.toml")  # a file in the working directory wins
    assert local.source == tmp_path / "quick.toml"
    assert local.param_names == []


@pytest.mark.parametrize("name", SHIPPED)
def test_random_suggestions_are_all_valid(name: str) -> None:
    space = load_space(name)
    assert space.name == name and space.source.name == f"{name}.toml"
    suggestions: list[Suggestion] = []

    def objective(trial: optuna.Trial) -> float:
        suggestions.append(space.suggest(trial))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=7))
    study.optimize(objective, n_trials=300)

    for trial, suggestion in zip(study.trials, suggestions, strict=True):
        _assert_valid(space, suggestion)
        assert trial.params == suggestion.params
    strategies = {s.params.get("allowed_batch_sizes") for s in suggestions}
    assert len(strategies) > 1  # the sampler really explores the strategies


def test_quick_grid_covers_every_point_and_all_are_valid() -> None:
    space = load_space("quick")
    grid = space.grid()
    assert list(grid) == space.param_names
    points = 1
    for values in grid.values():
        points *= len(values)
    assert 50 <= points <= 200  # small enough for a demo, big enough to show something

    seen = set()

    def objective(trial: optuna.Trial) -> float:
        suggestion = space.suggest(trial)
        _assert_valid(space, suggestion)
        seen.add(tuple(suggestion.params.values()))
        return 0.0

    study = optuna.create_study(sampler=optuna.samplers.GridSampler(grid, seed=0))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a grid value outside its distribution would warn
        study.optimize(objective, n_trials=points)
    assert seen == set(itertools.product(*grid.values()))


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_large_spaces_refuse_a_grid_with_a_way_out(name: str) -> None:
    with pytest.raises(SearchSpaceError) as info:
        load_space(name).grid()
    assert info.value.key == "grid"
    assert "tpe or random sampler" in str(info.value) and "quick" in str(info.value)


def test_grid_expands_steps_and_doubles_log_ranges(tmp_path: Path) -> None:
    path = tmp_path / "small.toml"
    path.write_text(
        "[batching]\n"
        "max_batch_size = { low = 3, high = 40, log = true }\n"
        "batch_timeout_micros = { low = 0, high = 1000, step = 250 }\n"
        "max_enqueued_batches = 10\n"
        "[server_flags]\n"
        "tensorflow_inter_op_parallelism = { choices = [0, 2] }\n"
    )
    space = load_space(path)
    assert space.grid() == {
        "max_batch_size": [3, 6, 12, 24, 40],
        "batch_timeout_micros": [0, 250, 500, 750, 1000],
        "tensorflow_inter_op_parallelism": [0, 2],
    }
    with pytest.raises(SearchSpaceError, match="50 points, more than 20"):
        space.grid(max_points=20)
    # The fixed value is applied to every suggestion without being an Optuna parameter.
    trial = optuna.create_study().ask()
    suggestion = space.suggest(trial)
    assert suggestion.batching.max_enqueued_batches == 10
    assert "max_enqueued_batches" not in trial.params


def test_cpu_reference_params_follow_the_batching_guide() -> None:
    space = load_space("cpu")
    assert space.reference_params(2) == {
        "max_batch_size": 128,
        "batch_timeout_micros": 0,
        "num_batch_threads": 2,
        "max_enqueued_batches": 2,
        "allowed_batch_sizes": "none",
        "tensorflow_intra_op_parallelism": 0,
        "tensorflow_inter_op_parallelism": 0,
    }
    # More cores than the space allows: snapped into the range, never outside it.
    assert space.reference_params(512)["num_batch_threads"] == 32


@pytest.mark.parametrize(("name", "cores"), list(itertools.product(SHIPPED, [1, 2, 3, 7, 64])))
def test_reference_params_enqueue_as_a_valid_trial(name: str, cores: int) -> None:
    space = load_space(name)
    reference = space.reference_params(cores)
    assert set(reference) == set(space.param_names)
    study = optuna.create_study()
    study.enqueue_trial(reference)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Optuna warns when an enqueued value is out of range
        trial = study.ask()
        suggestion = space.suggest(trial)
    assert suggestion.params == reference
    _assert_valid(space, suggestion)
    assert suggestion.batching.batch_timeout_micros == 0  # every shipped space allows 0
    assert suggestion.batching.allowed_batch_sizes == ()


def test_strategies_produce_tf_serving_lists() -> None:
    assert allowed_batch_sizes("none", 48) == ()
    assert allowed_batch_sizes("powers_of_two", 48) == (1, 2, 4, 8, 16, 32, 48)
    assert allowed_batch_sizes("powers_of_two", 64) == (1, 2, 4, 8, 16, 32, 64)
    assert allowed_batch_sizes("linear_4", 64) == (16, 32, 48, 64)
    assert allowed_batch_sizes("linear_4", 2) == (1, 2)
    for strategy in ("powers_of_two", "linear_2", "linear_4", "linear_8", "linear_32"):
        for max_batch in range(1, 1100):
            sizes = allowed_batch_sizes(strategy, max_batch)
            BatchingParameters(max_batch_size=max_batch, allowed_batch_sizes=sizes)

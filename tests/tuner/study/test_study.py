"""Study set-up on real SQLite: reference points, samplers, n_trials as a total, resume."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.studies import config_for, finish, new_study
from tuner.errors import ConfigError
from tuner.measure.service_process import default_command, expand_command
from tuner.study.objective import suggestion_for
from tuner.study.run import load_search_space
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, TF_SERVING_RECOMMENDED


@pytest.mark.parametrize("sampler", ["tpe", "random", "grid"])
def test_a_new_study_starts_with_the_two_reference_points(tmp_path: Path, sampler: str) -> None:
    config = config_for(tmp_path, sampler=sampler)
    space = load_search_space(config)
    study = new_study(config)
    first, second, third = (study.ask() for _ in range(3))
    assert first.user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert suggestion_for(first, space) is None  # the server runs without --enable_batching
    assert second.user_attrs[REFERENCE_ATTR] == TF_SERVING_RECOMMENDED
    recommended = suggestion_for(second, space)
    assert recommended.batching.batch_timeout_micros == 0  # the batching guide's start
    assert recommended.batching.max_batch_size == 128  # the largest the space allows
    assert REFERENCE_ATTR not in third.user_attrs
    assert suggestion_for(third, space) is not None  # sampled: valid by construction


def test_seeded_samplers_repeat_their_suggestions(tmp_path: Path) -> None:
    def sampled(name: str) -> list[dict]:
        config = config_for(tmp_path / name, sampler="random", seed=7)
        study = new_study(config)
        space = load_search_space(config)
        trials = [study.ask() for _ in range(5)][2:]
        for trial in trials:
            space.suggest(trial)
        return [t.params for t in trials]

    assert sampled("a") == sampled("b")


def test_resuming_with_another_search_space_is_refused(tmp_path: Path, demo_model_dir) -> None:
    from tuner.study.run import optimize

    config = config_for(tmp_path)
    config.server.model_base_path = str(demo_model_dir)
    new_study(config).set_user_attr("search_space", "cpu")
    with pytest.raises(ConfigError, match="was run with the search space 'cpu'"):
        optimize(config, say=lambda line: None)


def test_a_missing_model_is_one_sentence(tmp_path: Path) -> None:
    from tuner.study.run import optimize

    config = config_for(tmp_path)
    config.server.model_base_path = "nowhere"
    with pytest.raises(ConfigError, match="does not exist; build the demo model"):
        optimize(config, say=lambda line: None)


def test_service_command_placeholders_are_filled_in() -> None:
    values = {
        "host": "10.0.0.5",
        "port": "9000",
        "grpc_target": "127.0.0.1:8500",
        "model_name": "m",
        "model_base_path": "/models/m",
        "workers": "2",
        "python": "/usr/bin/python3",
    }
    assert expand_command("{python} -m service --port {port} --x '{model_name} y'", values) == [
        "/usr/bin/python3",
        "-m",
        "service",
        "--port",
        "9000",
        "--x",
        "m y",
    ]
    command = default_command(values)
    assert command[:3] == ["/usr/bin/python3", "-m", "service"]
    assert "127.0.0.1:8500" in command and "9000" in command
    assert command[command.index("--host") + 1] == "10.0.0.5"
    with pytest.raises(ValueError, match=r"\{grpc\}") as refused:
        expand_command(["--model-server", "{grpc}"], values)
    # the sentence lists every placeholder there is, {host} included
    assert all(f"{{{name}}}" in str(refused.value) for name in values)


def test_a_repeated_configuration_is_named(tmp_path: Path) -> None:
    from tuner.study.objective import same_params_as

    config = config_for(tmp_path)
    space = load_search_space(config)
    study = new_study(config)
    no_batching, recommended = study.ask(), study.ask()
    space.suggest(recommended)
    assert same_params_as(no_batching) is None
    finish(study, no_batching)
    finish(study, recommended)
    study.enqueue_trial(recommended.params)
    again = study.ask()
    space.suggest(again)
    assert same_params_as(again) == recommended.number
    study.enqueue_trial({}, user_attrs={REFERENCE_ATTR: NO_BATCHING})
    assert same_params_as(study.ask()) == no_batching.number

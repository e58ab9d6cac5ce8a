"""study.warm_start: a new study measures another study's winner and best trials first; a
study that is not there is one sentence and exit 2, before anything starts."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.studies import config_for
from tuner.commands.cli import main
from tuner.errors import ConfigError
from tuner.study.confirm import WINNER_ATTR
from tuner.study.run import open_study, optimize
from tuner.study.warm_start import WARM_START_ATTR
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR


def knee(batching, flags, rate) -> Served:
    """Capacity grows with max_batch_size and falls with the timeout: one clear best."""
    if batching is None:
        capacity = 40.0
    else:
        capacity = 2.0 * batching.max_batch_size - batching.batch_timeout_micros / 500
    return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)


def study_config(tmp_path: Path, name: str, n_trials: int, **study):
    config = config_for(tmp_path, name=name, n_trials=n_trials, **study)
    config.load.mode = "capacity"
    config.confirm.top_k, config.confirm.repeats = 2, 1
    (tmp_path / "model").mkdir(exist_ok=True)
    config.server.model_base_path = str(tmp_path / "model")
    return config


def test_the_other_study_s_winner_is_measured_first_then_its_best(tmp_path: Path) -> None:
    old = study_config(tmp_path, "before", 6, sampler="random")
    first = optimize(old, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    assert first.winner is not None
    before = open_study(old)
    winner_params = before.trials[first.winner["trial"]].params

    lines: list[str] = []
    new = study_config(tmp_path, "after", 5, warm_start="before")
    optimize(new, lines.append, parts=fake_parts(FakeMeasurer(knee)))
    after = open_study(new)
    assert after.trials[0].params == winner_params
    assert after.trials[0].user_attrs[WARM_START_ATTR] == f"before#{first.winner['trial']}"
    warm = [t for t in after.trials if WARM_START_ATTR in t.user_attrs]
    assert 2 <= len(warm) <= 4 and len({str(t.params) for t in warm}) == len(warm)
    assert all(t.params for t in warm)  # no batching is not warm-started: it is a reference
    # the references follow the warm start
    assert after.trials[len(warm)].user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert any("warm start from before" in line for line in lines)


def test_a_study_in_another_storage_is_named_url_hash_name(tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    old = study_config(other, "old", 4, sampler="random")
    optimize(old, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    winner = open_study(old).user_attrs[WINNER_ATTR]["trial"]
    new = study_config(tmp_path, "new", 3, warm_start=f"{old.study.storage}#old")
    optimize(new, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    assert open_study(new).trials[0].user_attrs[WARM_START_ATTR] == f"old#{winner}"


def test_a_warm_start_from_a_missing_study_is_one_sentence(tmp_path: Path) -> None:
    open_study(study_config(tmp_path, "there", 3))  # the storage holds another study
    config = study_config(tmp_path, "new", 3, warm_start="nope")
    with pytest.raises(ConfigError) as error:
        optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    message = str(error.value)
    assert "there is no study named 'nope'" in message and "(it holds: there)" in message
    assert "\n" not in message
    names = [x.study_name for x in optuna.get_all_study_summaries(config.study.storage)]
    assert names == ["there"]  # said before the new study was created
    gone = study_config(tmp_path, "new", 3, warm_start=f"sqlite:///{tmp_path / 'no.db'}#x")
    with pytest.raises(ConfigError, match="there is no database at"):
        optimize(gone, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))


def test_the_cli_says_a_missing_warm_start_study_in_one_line_exit_2(tmp_path, capsys) -> None:
    (tmp_path / "model").mkdir()
    toml = tmp_path / "tuner.toml"
    toml.write_text(
        '[study]\nname = "new"\nstorage = "sqlite:///t.db"\n'
        '[server]\nmodel_base_path = "model"\nbackend = "embedded"\n[search]\nspace = "quick"\n'
    )
    code = main(["optimize", "--config", str(toml), "--warm-start", "nope"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and "study.warm_start = 'nope'" in err
    assert "there is no" in err

"""export and the study summary say which model server measured the winner, and how to
re-measure a winner of the embedded stand-in on TF Serving itself."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, render
from search_spaces.loader import load_space
from tuner.commands.export import export
from tuner.review.backend_note import recheck_space_text, summary_tag
from tuner.review.show import winner_summary
from tuner.study.confirm import WINNER_ATTR
from tuner.trial_record import CONFIG_FILE_ATTR

WINNING = BatchingParameters(
    max_batch_size=32,
    batch_timeout_micros=2000,
    num_batch_threads=2,
    max_enqueued_batches=16,
    allowed_batch_sizes=(1, 2, 4, 8, 16, 32),
)


def study_won_on(backend: str) -> optuna.Study:
    study = optuna.create_study(direction="maximize")
    dist = optuna.distributions.IntDistribution(1, 128)
    trial = optuna.trial.create_trial(
        params={"max_batch_size": 32},
        distributions={"max_batch_size": dist},
        value=100.0,
        user_attrs={
            "backend": backend,
            "batching_file": render(WINNING),
            "server_flags": {"tensorflow_intra_op_parallelism": "1"},
            "rps": 100.0,
            "p95_ms": 20.0,
        },
    )
    study.add_trial(trial)
    study.set_user_attr(
        WINNER_ATTR, {"trial": 0, "confirmed": True, "median_rps": 100.0, "runs": 3}
    )
    return study


@pytest.mark.parametrize(
    ("backend", "words"),
    [
        ("embedded", "the embedded stand-in"),
        ("binary", "tensorflow_model_server"),
        ("docker", "TF Serving in Docker"),
    ],
)
def test_the_summary_names_the_backend(backend: str, words: str) -> None:
    line = winner_summary(study_won_on(backend), "p95")
    assert line.startswith("winner: trial 0") and "\n" not in line
    assert f"[measured on {words}" in line


def test_export_of_a_stand_in_winner_says_how_to_re_measure_it(tmp_path: Path) -> None:
    out = tmp_path / "batching_parameters.txt"
    result = export(study_won_on("embedded"), out, model_name="sentiment")
    note = result.backend_note
    assert "embedded stand-in" in note and "before production" in note
    assert "--backend docker" in note and "--backend binary" in note
    space_file = tmp_path / "batching_parameters.recheck.toml"
    assert str(space_file) in note
    # The space fixes every value: its one suggestion is exactly the exported file.
    space = load_space(space_file)
    assert space.param_names == []
    suggestion = space.suggest(optuna.trial.FixedTrial({}))
    assert render(suggestion.batching) == out.read_text()
    assert suggestion.server_flags == {"tensorflow_intra_op_parallelism": "1"}


def test_the_re_check_command_carries_the_study_s_config_file(tmp_path: Path) -> None:
    """Run from another directory, a re-check without --config would read the built-in
    defaults (another model path, SLO and storage); with it, the study's own settings."""
    config = tmp_path / "conf" / "tuner.toml"
    out = tmp_path / "b.txt"
    note = export(study_won_on("embedded"), out, model_name="m", config=config).backend_note
    assert f"python -m tuner optimize --config {config} --backend docker" in note
    assert "--config" not in export(study_won_on("embedded"), out, model_name="m").backend_note


def test_without_a_config_the_re_check_takes_the_one_the_study_was_created_with(tmp_path):
    """`export` run elsewhere without --config reads the built-in defaults; the re-check must
    still measure under the study's own settings, while that file is there."""
    config = tmp_path / "tuner.toml"
    config.write_text("[objective]\nslo_ms = 40\n")
    study = study_won_on("embedded")
    study.set_user_attr(CONFIG_FILE_ATTR, str(config))
    out = tmp_path / "b.txt"
    assert f"--config {config} --backend" in export(study, out, model_name="m").backend_note
    config.unlink()  # moved or deleted since: no --config, as for a study of the defaults
    assert "--config" not in export(study, out, model_name="m").backend_note


def test_the_re_check_command_carries_a_storage_given_on_the_command_line(tmp_path: Path):
    out = tmp_path / "b.txt"
    study = study_won_on("embedded")
    note = export(study, out, model_name="m", storage="sqlite:////data/t.db").backend_note
    assert "--storage sqlite:////data/t.db --backend docker" in note
    assert "password" not in note
    # A password is never printed: the command shows where it goes back.
    url = "postgresql+psycopg://tuner:s3cret@db.example/tuning"
    note = export(study, out, model_name="m", storage=url).backend_note
    assert "s3cret" not in note
    assert "--storage 'postgresql+psycopg://tuner:***@db.example/tuning'" in note
    assert "put the database's password back in --storage" in note


def test_export_of_a_real_server_winner_only_names_it(tmp_path: Path) -> None:
    out = tmp_path / "b.txt"
    result = export(study_won_on("binary"), out, model_name="sentiment")
    assert result.backend_note == "measured on tensorflow_model_server (the real binary)"
    assert not (tmp_path / "b.recheck.toml").exists()


def test_an_unrecorded_backend_is_not_passed_off_as_tf_serving() -> None:
    trial = optuna.trial.create_trial(value=1.0, user_attrs={})
    assert summary_tag(trial) == " [measured on a model server this trial did not record]"
    assert recheck_space_text(trial) is None
    odd = optuna.trial.create_trial(value=1.0, user_attrs={"backend": "triton"})
    assert summary_tag(odd) == " [measured on an unknown backend ('triton')]"

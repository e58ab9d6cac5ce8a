"""The CLI in-process: help, flag overrides, and one line with the right exit code on errors."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from sqlalchemy.engine import make_url

from model_server.batching_parameters import BatchingParameters, render
from tests.support.postgres import PostgresServer
from tests.support.studies import config_for, new_study
from tuner.commands.cli import _config, build_parser, main
from tuner.config import load_config


def test_help_explains_every_command(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    for command in ("optimize", "show", "export", "report"):
        assert command in out


def test_optimize_help_lists_every_override(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["optimize", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--config",
        "--n-trials",
        "--timeout-s",
        "--study-name",
        "--storage",
        "--backend",
        "--search-space",
        "--seed",
        "--sampler",
        "--slo-ms",
        "--service-url",
    ):
        assert flag in out


def test_flags_override_the_file(tmp_path: Path) -> None:
    path = tmp_path / "tuner.toml"
    path.write_text('[study]\nn_trials = 5\nname = "file"\nseed = 1\n[search]\nspace = "cpu"\n')
    args = build_parser().parse_args(
        [
            "optimize",
            "--config",
            str(path),
            "--n-trials",
            "9",
            "--timeout-s",
            "60",
            "--study-name",
            "flag",
            "--storage",
            "sqlite:///other.db",
            "--backend",
            "embedded",
            "--search-space",
            "quick",
            "--seed",
            "3",
            "--sampler",
            "random",
            "--slo-ms",
            "50",
        ]
    )
    config = _config(args)
    assert (config.study.n_trials, config.study.timeout_s, config.study.name) == (9, 60.0, "flag")
    assert config.study.storage == f"sqlite:///{Path.cwd() / 'other.db'}"
    assert (config.study.seed, config.study.sampler) == (3, "random")
    assert config.server.backend == "embedded"
    assert config.search.space == "quick"
    assert config.objective.slo_ms == 50.0


def test_a_bad_flag_value_is_a_config_error(tmp_path: Path, capsys) -> None:
    code = main(["show", "--config", str(tmp_path / "missing.toml")])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "does not exist" in err


def test_show_without_the_study_is_one_line_exit_1(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./tuner.toml: built-in defaults and the flags
    storage = f"sqlite:///{tmp_path / 't.db'}"
    optuna.create_study(study_name="other", storage=storage)
    code = main(["show", "--storage", storage, "--study-name", "nope"])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1
    assert "no study named 'nope'" in err and "it holds: other" in err


def test_export_refuses_an_infeasible_study_in_one_line(tmp_path: Path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 't.db'}"
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask({"max_batch_size": optuna.distributions.IntDistribution(1, 64)})
    trial.set_user_attr("batching_file", render(BatchingParameters(max_batch_size=8)))
    trial.set_user_attr("rps", 100.0)
    trial.set_constraint("p95_minus_slo_ms", 40.0)
    study.tell(trial, 100.0)
    out = tmp_path / "b.txt"
    code = main(["export", "--storage", storage, "--study-name", "s", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and "has no feasible trial" in err
    assert not out.exists()


def add_stand_in_winner(study: optuna.Study) -> None:
    """A feasible batched trial measured on the embedded server (export prints a re-check)."""
    study.add_trial(
        optuna.trial.create_trial(
            params={"max_batch_size": 8},
            distributions={"max_batch_size": optuna.distributions.IntDistribution(1, 64)},
            value=100.0,
            user_attrs={
                "batching_file": render(BatchingParameters(max_batch_size=8)),
                "backend": "embedded",
                "rps": 100.0,
            },
            system_attrs={"constraints": [-1.0]},
        )
    )


def test_export_from_another_directory_names_the_model_the_study_measured(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """Without --config the built-in defaults apply, whose model path is relative to where
    `export` runs; the command it prints must name the study's model all the same, and the
    re-check must go to the study's database, which only --storage named, and find its space
    file from any directory."""
    config = config_for(tmp_path)
    study = new_study(config)
    add_stand_in_winner(study)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    storage = config.study.storage
    code = main(["export", "--storage", storage, "--study-name", "s", "--out", "b.txt"])
    out = capsys.readouterr().out
    assert code == 0
    assert f"--model_base_path={tmp_path / 'models' / 'sentiment'} " in out
    assert str(elsewhere / "models") not in out
    assert f"--storage {storage} --backend docker" in out
    assert f"--search-space {elsewhere / 'b.recheck.toml'} " in out  # --out was relative


def test_export_elsewhere_without_config_re_checks_with_the_study_s_config(
    tmp_path: Path, capsys, monkeypatch
) -> None:
    """The study records the config file it was created with; `export` run from another
    directory without --config puts that file in the re-check command, not the defaults."""
    project = tmp_path / "project"
    project.mkdir()
    toml = project / "tuner.toml"
    toml.write_text('[study]\nname = "s"\nstorage = "sqlite:///t.db"\n[search]\nspace = "quick"\n')
    study = new_study(load_config(toml))
    add_stand_in_winner(study)
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{project / 't.db'}"
    assert main(["export", "--storage", storage, "--study-name", "s", "--out", "b.txt"]) == 0
    assert f"optimize --config {toml} --storage {storage} --backend docker" in (
        capsys.readouterr().out
    )


def test_show_does_not_create_a_database(tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["show"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "there is no database at" in err
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("url", "exit_code", "words"),
    [
        ("postgres://tuner@127.0.0.1:1/tuning", 2, "write postgresql+psycopg://"),
        ("postgresql+psycopg2://tuner@127.0.0.1:1/tuning", 2, "tfserving-batching-tuner[postgres]"),
        ("postgresql+psycopg://tuner:pw@127.0.0.1:1/tuning", 1, "no database server answers"),
    ],
)
def test_storage_problems_are_one_sentence_with_the_right_exit_code(
    url: str, exit_code: int, words: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wrong URL is a configuration error (2); a database that is down is a runtime one (1)."""
    assert main(["show", "--storage", url]) == exit_code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and words in err
    assert "pw@" not in err


def test_missing_postgresql_database_says_how_to_create_it(
    postgres_server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = make_url(postgres_server.admin_url).set(database="no_study_here")
    code = main(["optimize", "--storage", url.render_as_string(hide_password=False)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1
    assert "has no database 'no_study_here'" in err and "createdb no_study_here" in err

"""The command's surface: the console script, --version, renamed flags with their old
spelling, and one sentence (never a traceback) for a missing file, an unwritable path or Ctrl-C."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, render
from tuner.commands import cli
from tuner.commands.cli import _config, build_parser, main

REPO = Path(__file__).resolve().parents[3]
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


def test_version_in_process(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"tuner {cli.version()}"
    assert cli.version()[0].isdigit()


@pytest.mark.parametrize(
    "command",
    [
        [str(Path(sys.executable).parent / "tuner")],  # the console script of this venv
        [sys.executable, "-m", "tuner"],
    ],
    ids=["console-script", "python-m"],
)
def test_the_console_script_and_python_m_are_one_command(command: list[str]) -> None:
    version = subprocess.run(
        [*command, "--version"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.split()[-1] == cli.version()
    helped = subprocess.run(
        [*command, "show", "--help"], capture_output=True, text=True, env=ENV, timeout=60
    )
    assert helped.returncode == 0 and "--study-name" in helped.stdout


def test_timeout_keeps_its_old_spelling_with_a_deprecation_line(tmp_path: Path, capsys):
    path = tmp_path / "tuner.toml"
    path.write_text("")
    new = _config(
        build_parser().parse_args(["optimize", "--config", str(path), "--timeout-s", "9"])
    )
    assert new.study.timeout_s == 9.0
    assert "deprecated" not in capsys.readouterr().err
    old = _config(build_parser().parse_args(["optimize", "--config", str(path), "--timeout", "7"]))
    assert old.study.timeout_s == 7.0
    assert capsys.readouterr().err.strip() == "note: --timeout is deprecated; use --timeout-s"


def test_a_load_worker_is_named_with_worker_as_a_tuner_is(capsys) -> None:
    args = build_parser().parse_args(["load-worker", "--master", "h:5557", "--worker", "load-1"])
    assert args.worker == "load-1"
    args = build_parser().parse_args(["load-worker", "--master", "h:5557", "--name", "load-2"])
    assert args.worker == "load-2"
    assert "--name is deprecated; use --worker" in capsys.readouterr().err


def test_a_missing_config_file_says_the_path_is_wrong(tmp_path: Path, capsys) -> None:
    missing = tmp_path / "nonexistent.toml"
    assert main(["show", "--config", str(missing)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert f"config file {missing} does not exist" in err
    assert "pass --config" not in err


def feasible_study(storage: str) -> None:
    study = optuna.create_study(study_name="s", storage=storage, direction="maximize")
    trial = study.ask({"max_batch_size": optuna.distributions.IntDistribution(1, 64)})
    trial.set_user_attr("batching_file", render(BatchingParameters(max_batch_size=8)))
    trial.set_user_attr("rps", 100.0)
    trial.set_constraint("p95_minus_slo_ms", -1.0)
    study.tell(trial, 100.0)


def test_export_to_an_unwritable_path_is_one_sentence_exit_1(tmp_path: Path, capsys) -> None:
    storage = f"sqlite:///{tmp_path / 't.db'}"
    feasible_study(storage)
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    out = blocker / "batching_parameters.txt"
    code = main(["export", "--storage", storage, "--study-name", "s", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write {out}")
    assert not list(tmp_path.glob("a-file*.tmp"))


def test_ctrl_c_speaks_of_trials_only_where_trials_run(monkeypatch, capsys) -> None:
    def interrupted(args) -> int:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "cmd_show", interrupted)
    assert main(["show", "--storage", "sqlite://"]) == 130
    err = capsys.readouterr().err
    assert err.strip() == "interrupted: show stopped; the study is unchanged"

    monkeypatch.setattr(cli, "cmd_optimize", interrupted)
    assert main(["optimize", "--storage", "sqlite://"]) == 130
    assert "any running trial is marked failed (interrupted)" in capsys.readouterr().err


def test_optimize_says_when_built_in_defaults_stand_in_for_a_config(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)  # no ./tuner.toml here
    _config(build_parser().parse_args(["show"]))
    assert capsys.readouterr().err == ""  # show and export fail with the reason instead
    config = _config(build_parser().parse_args(["optimize"]))
    err = capsys.readouterr().err
    assert err.startswith("note: no --config and no ./tuner.toml here")
    assert repr(config.study.name) in err


def test_load_worker_with_an_unwritable_log_is_one_sentence_exit_1(tmp_path: Path, capsys):
    config = tmp_path / "tuner.toml"
    config.write_text("[load]\nworkers = 1\n")
    log = tmp_path / "missing-dir" / "load-worker.log"
    code = main(
        ["load-worker", "--config", str(config), "--master", "127.0.0.1:1", "--log", str(log)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert err.count("\n") == 1 and err.startswith(f"error: cannot write the Locust log {log}")

"""Capacity-mode settings: defaults, and every bad value ends in one sentence, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from tuner.commands.cli import main
from tuner.config import load_config
from tuner.errors import ConfigError


def test_capacity_is_the_default_mode_and_its_defaults_load() -> None:
    config = load_config(None)
    assert config.load.mode == "capacity"
    assert 0 < config.load.resolution < 1
    assert config.load.min_rps <= config.load.start_rps <= config.load.max_rps
    assert config.objective.min_goodput_ratio == 0.95
    assert config.load.precision == 0.05


def test_precision_and_step_extra_reach_the_search() -> None:
    from tuner.capacity.settings import search_settings

    config = load_config(None, {"load": {"precision": 0.03, "step_measure_s": 3.0}})
    settings = search_settings(config)
    assert settings.precision == 0.03
    assert settings.step_extra_s == 6.0  # twice the window unless set
    config = load_config(None, {"load": {"step_extra_s": 0.0}})
    assert search_settings(config).step_extra_s == 0.0


def test_closed_mode_is_accepted() -> None:
    assert load_config(None, {"load": {"mode": "closed"}}).load.mode == "closed"


BAD = [
    ("mode = 'open'", "load.mode must be one of capacity, closed"),
    ("start_rps = 0", "load.start_rps must be a positive rate"),
    ("min_rps = -5", "load.min_rps must be a positive rate"),
    ("max_rps = 0.0", "load.max_rps must be a positive rate"),
    ("min_rps = 500\nmax_rps = 100", "load.min_rps (500) must not exceed load.max_rps (100)"),
    ("start_rps = 9000", "load.start_rps (9000) must lie between"),
    ("resolution = 0", "load.resolution must be a fraction between 0 and 1"),
    ("resolution = 1.5", "load.resolution must be a fraction between 0 and 1"),
    ("growth = 1", "load.growth must be above 1"),
    ("max_steps = 0", "load.max_steps must be at least 1"),
    ("step_measure_s = 0.5", "load.step_measure_s (0.5) must be at least one interval"),
    ("step_measure_s = 2.5", "must be whole multiples of load.interval_s"),
    ("step_warmup_s = 1.5", "must be whole multiples of load.interval_s"),
    ("max_trial_s = 3", "load.max_trial_s (3) must allow one step"),
    ("max_in_flight = 0", "load.max_in_flight must be at least 1"),
    ("low_check_fraction = 1", "load.low_check_fraction must be a fraction"),
    ("precision = 0", "load.precision must be a fraction between 0 and 1"),
    ("precision = 1.0", "load.precision must be a fraction between 0 and 1"),
    ("precision = -0.1", "load.precision must be a fraction between 0 and 1"),
    ("step_extra_s = 1.5", "load.step_extra_s (1.5) must be 0 or a whole multiple"),
]


@pytest.mark.parametrize(("line", "message"), BAD)
def test_bad_load_settings_are_one_sentence(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "tuner.toml"
    path.write_text(f"[load]\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert message in str(info.value)
    assert "\n" not in str(info.value).strip()


@pytest.mark.parametrize("ratio", [0, 1.2, -0.5])
def test_bad_goodput_ratio(tmp_path: Path, ratio: float) -> None:
    path = tmp_path / "tuner.toml"
    path.write_text(f"[objective]\nmin_goodput_ratio = {ratio}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"objective\.min_goodput_ratio must be a fraction"):
        load_config(path)


@pytest.mark.parametrize(("line", "message"), BAD[:6] + BAD[10:12])
def test_the_cli_says_it_in_one_line_and_exits_2(
    tmp_path: Path, capsys, line: str, message: str
) -> None:
    path = tmp_path / "tuner.toml"
    path.write_text(f"[load]\n{line}\n", encoding="utf-8")
    code = main(["optimize", "--config", str(path)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err


def test_a_study_refuses_to_resume_in_the_other_mode(tmp_path: Path, demo_model_dir) -> None:
    from tests.support.studies import new_study
    from tuner.study.run import optimize

    storage = f"sqlite:///{tmp_path / 't.db'}"
    sections = {
        "study": {"name": "s", "storage": storage},
        "search": {"space": "quick"},
        "server": {"model_base_path": str(demo_model_dir)},
    }
    closed = load_config(None, {**sections, "load": {"mode": "closed"}})
    study = new_study(closed)
    assert study.user_attrs["load_mode"] == "closed"
    with pytest.raises(ConfigError) as info:
        optimize(load_config(None, sections), say=lambda line: None)
    message = str(info.value)
    assert "was run with load.mode = 'closed', not 'capacity'" in message
    assert 'set load.mode = "closed" to resume it' in message and "\n" not in message
    assert len(study.trials) == 2  # nothing was touched

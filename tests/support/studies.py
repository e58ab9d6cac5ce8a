"""Studies on real SQLite for tests of the tuner's study logic (no servers)."""

from __future__ import annotations

from pathlib import Path

import optuna

from tuner.config import TunerConfig, load_config
from tuner.study.run import load_search_space, open_study, prepare_new_study


def config_for(tmp_path: Path, **study) -> TunerConfig:
    """A config on `tmp_path/t.db`, study "s", the quick space; `study` overrides [study]."""
    settings = {"name": "s", "storage": f"sqlite:///{tmp_path / 't.db'}", **study}
    config = load_config(None, {"study": settings, "search": {"space": "quick"}})
    config.base_dir = tmp_path
    return config


def new_study(config: TunerConfig) -> optuna.Study:
    """The study as `optimize` creates it: the two reference trials queued."""
    space = load_search_space(config)
    study = open_study(config, space)
    prepare_new_study(study, space, config)
    return study


def stored_trials(url: str, name: str) -> tuple[list[optuna.trial.FrozenTrial], dict]:
    """A study's trials and user attrs read from `url`, its connections closed after: a test
    that polls a study (while tuners run) would otherwise leave one connection pool per call
    for the collector, which psycopg reports as ResourceWarnings in whichever test runs then.
    KeyError when there is no such study yet."""
    storage = optuna.storages.RDBStorage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
        return study.get_trials(), study.user_attrs
    finally:
        storage.engine.dispose()


def finish(study: optuna.Study, trial: optuna.Trial, reason: str | None = None) -> None:
    """Complete `trial`, or fail it with `reason` as the objective records failures."""
    if reason is None:
        study.tell(trial, 1.0)
    else:
        trial.set_user_attr("fail_reason", reason)
        study.tell(trial, state=optuna.trial.TrialState.FAIL)

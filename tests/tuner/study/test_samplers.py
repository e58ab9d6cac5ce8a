"""The samplers by name, on whole scripted studies: the quick search walks one parameter at
a time from the recommended point and never measures a point twice; the Sobol sequence moves
on from trial to trial."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.studies import config_for
from tuner.config import SAMPLERS, load_config
from tuner.errors import ConfigError
from tuner.study.quick_search import MOVE_ATTR, QuickSampler
from tuner.study.run import load_search_space, open_study, optimize
from tuner.study.samplers import SobolSampler, make_sampler
from tuner.trial_record import REFERENCE_ATTR, TF_SERVING_RECOMMENDED


def knee(batching, flags, rate) -> Served:
    """Capacity peaks at max_batch_size 32 and a 1 ms timeout; two threads help."""
    if batching is None:
        capacity = 100.0
    else:
        size = {8: 1, 32: 2, 128: 1.5}[batching.max_batch_size]
        timeout = {0: 1.0, 1000: 1.3, 5000: 0.8}[batching.batch_timeout_micros]
        capacity = 100.0 * size * timeout * (1.2 if batching.num_batch_threads == 2 else 1.0)
    return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)


def scripted_study(tmp_path: Path, sampler: str, n_trials: int) -> optuna.Study:
    tmp_path.mkdir(exist_ok=True)
    config = config_for(tmp_path, n_trials=n_trials, sampler=sampler)
    config.load.mode = "capacity"
    config.confirm.top_k = 0
    (tmp_path / "model").mkdir(exist_ok=True)
    config.server.model_base_path = str(tmp_path / "model")
    optimize(config, lambda line: None, parts=fake_parts(FakeMeasurer(knee)))
    return open_study(config)


def test_every_sampler_name_is_accepted_and_built(tmp_path: Path) -> None:
    for name in SAMPLERS:
        config = config_for(tmp_path, sampler=name)
        sampler = make_sampler(config, load_search_space(config), 3)
        expected = {
            "tpe": optuna.samplers.TPESampler,
            "tpe-multivariate": optuna.samplers.TPESampler,
            "random": optuna.samplers.RandomSampler,
            "qmc": SobolSampler,
            "grid": optuna.samplers.GridSampler,
            "quick": QuickSampler,
        }[name]
        assert isinstance(sampler, expected), name
    with pytest.raises(ConfigError, match=r"study\.sampler must be one of tpe, tpe-multivariate"):
        load_config(None, {"study": {"sampler": "gp"}})


def test_the_quick_search_moves_the_incumbent_one_parameter_at_a_time(tmp_path: Path) -> None:
    study = scripted_study(tmp_path, "quick", 9)
    trials = study.trials
    assert trials[1].user_attrs[REFERENCE_ATTR] == TF_SERVING_RECOMMENDED
    seen = [trials[1].params]
    for trial in trials[2:]:
        assert trial.params not in seen, "a point measured twice"
        seen.append(trial.params)
        earlier = [t for t in trials[: trial.number] if t.params and t.state.name == "COMPLETE"]
        incumbent = max(earlier, key=lambda t: t.value)
        changed = [k for k in trial.params if trial.params[k] != incumbent.params[k]]
        assert len(changed) == 1, (trial.number, changed)
        assert trial.system_attrs[MOVE_ATTR][0] == changed[0]
    best = max((t for t in trials if t.value is not None), key=lambda t: t.value)
    assert best.value > trials[1].value  # it kept what helped


def test_the_sobol_sequence_moves_on_from_trial_to_trial(tmp_path: Path) -> None:
    study = scripted_study(tmp_path, "qmc", 8)
    sampled = [str(t.params) for t in study.trials[2:]]
    assert len(set(sampled)) >= 5, sampled


def test_multivariate_tpe_models_the_parameters_together(tmp_path: Path) -> None:
    """The no-batching reference has no parameter: without grouping, the intersection of the
    trials' spaces is empty and multivariate TPE samples exactly as independent TPE does."""
    alone = scripted_study(tmp_path / "independent", "tpe", 9)
    together = scripted_study(tmp_path / "multivariate", "tpe-multivariate", 9)
    startup = 2 + 3  # the references, then random trials (tuner/study/samplers.py)
    assert [t.params for t in alone.trials[:startup]] == [
        t.params for t in together.trials[:startup]
    ]
    assert [t.params for t in alone.trials[startup:]] != [
        t.params for t in together.trials[startup:]
    ]

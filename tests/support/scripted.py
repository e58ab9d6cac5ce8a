"""Studies measured by tests/support/fake_measurer.py: the study logic with no process."""

from __future__ import annotations

from pathlib import Path

import optuna

from tests.support.fake_measurer import FakeCapacityMeasurer, FakeMeasurer, ServedFn
from tests.support.studies import config_for, new_study
from tuner.capacity.settings import load_profile, search_settings, step_criteria
from tuner.config import TunerConfig
from tuner.errors import TrialFailed
from tuner.review.dashboard import attach_trial_curve
from tuner.review.images import browser_session
from tuner.storage import SampleStore, open_artifact_store
from tuner.study.objective import Objective
from tuner.study.run import load_search_space


def run(
    tmp_path: Path, served: ServedFn, mode: str, n_trials: int, fake: FakeMeasurer | None = None
) -> optuna.Study:
    """`n_trials` of a new study (the two reference points first) scored by `served`."""
    config = config_for(tmp_path)
    config.load.mode = mode
    study = new_study(config)
    fake = fake or FakeMeasurer(served)
    # One browser for the study's curve PNGs, as tuner.study.run.optimize runs it: a browser start
    # per trial was most of these tests' time.
    with SampleStore(config.study.storage) as samples, browser_session():
        study.optimize(
            objective(config, fake, samples, study, tmp_path),
            n_trials=n_trials,
            catch=(TrialFailed,),
        )
    return study


def objective(
    config: TunerConfig, fake: FakeMeasurer, samples: SampleStore, study, tmp_path: Path
) -> Objective:
    capacity = (
        FakeCapacityMeasurer(
            fake, load_profile(config), search_settings(config), step_criteria(config)
        )
        if config.load.mode == "capacity"
        else None
    )
    artifact_store = open_artifact_store(tmp_path / "artifacts")
    return Objective(
        config=config,
        space=load_search_space(config),
        measurer=fake,
        capacity=capacity,
        samples=samples,
        storage=study._storage,
        artifact_store=artifact_store,
        workdir=tmp_path / "runs",
        draw_curve=lambda trial, workdir: attach_trial_curve(
            trial, config, samples, artifact_store, workdir
        ),
    )

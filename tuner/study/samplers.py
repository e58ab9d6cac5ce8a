"""The study's sampler, by name (`study.sampler`, tuner/config.py's SAMPLERS).

Every sampler sees which trials were feasible: the objective stores each trial's constraints
where Optuna keeps them (tuner/trial_record.py), and Optuna 5's TPE reads them from there
(a feasible trial ranks above every infeasible one) with no `constraints_func`. Which sampler
finds the best configuration soonest is measured by bench/replay.py on a recorded surface
(docs/concepts/samplers.md).
"""

from __future__ import annotations

import warnings
import zlib

import optuna

from search_spaces.loader import SearchSpace, SearchSpaceError
from tuner.config import TunerConfig
from tuner.errors import ConfigError
from tuner.study.quick_search import QuickSampler

COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED
REFERENCE_POINTS = 2  # no batching, and TF Serving's recommended starting point


class SobolSampler(optuna.samplers.QMCSampler):
    """Optuna's QMCSampler takes its search space from the study's first trial, which here is
    the no-batching reference with no parameter at all, and would then sample every trial at
    random: this one takes it from the first trial that has parameters."""

    def infer_relative_search_space(
        self, study: optuna.Study, trial: optuna.trial.FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        done = study.get_trials(deepcopy=False, states=(COMPLETE, PRUNED))
        with_params = [t for t in done if t.distributions]
        if not with_params:
            return {}
        return dict(min(with_params, key=lambda t: t.number).distributions)


def make_sampler(
    config: TunerConfig, space: SearchSpace, trial_number: int = 0
) -> optuna.samplers.BaseSampler:
    """Seeded per trial (seed + the number of trials before it): tuners sharing a study would
    otherwise each replay the same seeded sequence and measure the same parameters, while a
    lone tuner's study stays reproducible. The samplers keep no state but their RNG (TPE
    reads the history from storage), so a fresh one per trial loses nothing. The Sobol
    sequence is the exception: it is one sequence per study (its position is kept in the
    study), so its seed stays the study's."""
    name = config.study.sampler
    seed = None if config.study.seed is None else config.study.seed + trial_number
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "grid":
        try:
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        except SearchSpaceError as exc:
            raise ConfigError(str(exc)) from None
    if name == "qmc":
        study_seed = config.study.seed
        if study_seed is None:
            study_seed = zlib.crc32(config.study.name.encode())
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return SobolSampler(
                qmc_type="sobol",
                scramble=True,
                seed=study_seed,
                independent_sampler=optuna.samplers.RandomSampler(seed=seed),
                warn_independent_sampling=False,
            )
    if name == "quick":
        return QuickSampler(seed=seed)
    # Random trials before TPE models the space; the two reference points do not explore.
    startup = REFERENCE_POINTS + min(10, max(3, config.study.n_trials // 3))
    if name == "tpe-multivariate":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # group: the no-batching reference has no parameter, and the intersection of the
            # trials' spaces would be empty, leaving every parameter to independent TPE
            return optuna.samplers.TPESampler(
                seed=seed, n_startup_trials=startup, multivariate=True, group=True
            )
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup)

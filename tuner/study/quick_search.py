"""A quick search in Triton Model Analyzer's style, as an Optuna sampler (`study.sampler =
"quick"`): start from the best configuration known (TF Serving's recommended point, which the
study measures first), change one parameter by one position at a time, and keep what helps.

Each trial moves the incumbent (the best feasible trial so far) one position along one
parameter, in the space's order, trying first the direction that made the incumbent (a move
that helped is continued); once every neighbour one position away was measured, it widens to
two positions, and so on. When nothing is left around the incumbent the trial is random.

The sampler keeps no state but the study: which points were measured and which is best are
read from storage, and each trial's move is stored on it (system attr `quick_move`), so tuners
sharing a study, and a fresh sampler per trial, walk the same path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    IntDistribution,
)
from optuna.trial import FrozenTrial, TrialState

from tuner.trial_record import is_feasible, params_key

MOVE_ATTR = "quick_move"  # [parameter, direction] of the move that proposed the trial
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING, TrialState.WAITING)


class QuickSampler(optuna.samplers.BaseSampler):
    def __init__(self, seed: int | None = None) -> None:
        self._random = optuna.samplers.RandomSampler(seed=seed)
        self._plans: dict[int, dict[str, Any] | None] = {}

    def reseed_rng(self) -> None:
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        return {}

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        if trial.number not in self._plans:
            self._plans[trial.number] = self._plan(study, trial)
        plan = self._plans[trial.number]
        if plan is not None and param_name in plan:
            value = plan[param_name]
            if param_distribution._contains(param_distribution.to_internal_repr(value)):
                return value
        return self._random.sample_independent(study, trial, param_name, param_distribution)

    def _plan(self, study: optuna.Study, trial: FrozenTrial) -> dict[str, Any] | None:
        """The incumbent moved one position along one parameter, to a point not measured yet;
        None when there is no incumbent or every point around it was measured."""
        others = [
            t for t in study.get_trials(deepcopy=False, states=TAKEN) if t.number != trial.number
        ]
        incumbent = _incumbent(others)
        if incumbent is None:
            return None
        # queued trials (references, a warm start) count as measured: they will be
        measured = {
            params_key(t.params or t.system_attrs.get("fixed_params") or {}) for t in others
        }
        for params, move in neighbours(incumbent, _preferred_move(incumbent)):
            if params_key(params) not in measured:
                study._storage.set_trial_system_attr(trial._trial_id, MOVE_ATTR, list(move))
                return params
        return None


def _incumbent(trials: list[FrozenTrial]) -> FrozenTrial | None:
    """The best feasible measured point; before any, the first complete one with params."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.params]
    feasible = [t for t in complete if is_feasible(t) and t.value is not None]
    if feasible:
        return max(feasible, key=lambda t: (t.value, -t.number))
    return complete[0] if complete else None


def _preferred_move(incumbent: FrozenTrial) -> tuple[str, int] | None:
    move = incumbent.system_attrs.get(MOVE_ATTR)
    return (move[0], int(move[1])) if move else None


def neighbours(
    incumbent: FrozenTrial, first: tuple[str, int] | None = None
) -> list[tuple[dict[str, Any], tuple[str, int]]]:
    """Every point that differs from the incumbent in one parameter, nearest first (radius 1,
    then 2, ...); within a radius the move that made the incumbent comes first, then the
    parameters in order, each up before down."""
    out: list[tuple[dict[str, Any], tuple[str, int]]] = []
    widest = max((len(_values(d)) for d in incumbent.distributions.values()), default=1)
    for radius in range(1, widest):
        moves = [(name, d) for name in incumbent.params for d in (1, -1)]
        if first is not None and first in moves:
            moves.remove(first)
            moves.insert(0, first)
        for name, direction in moves:
            values = _values(incumbent.distributions[name])
            current = incumbent.params[name]
            if current not in values:
                continue
            index = values.index(current) + direction * radius
            if 0 <= index < len(values):
                out.append(({**incumbent.params, name: values[index]}, (name, direction)))
    return out


def _values(distribution: BaseDistribution) -> Sequence[Any]:
    """A parameter's values in order: its choices, or its integer range (doubling when log)."""
    if isinstance(distribution, CategoricalDistribution):
        return list(distribution.choices)
    if isinstance(distribution, IntDistribution):
        if distribution.log:
            values, value = [], distribution.low
            while value < distribution.high:
                values.append(value)
                value *= 2
            return [*values, distribution.high]
        return list(range(distribution.low, distribution.high + 1, distribution.step))
    return []  # a float parameter is left to the random fallback

"""How much one configuration's capacity moves from one run to the next, measured by the study
itself, and a capacity's interval widened by it.

A search's own interval (`capacity_ci_rps`, tuner/capacity/interval.py) covers what its
windows could see: the percentile's noise and the bisection's grid. It cannot see what moves
between restarts: on the 2-core machine of `bench/RESULTS.md` the bench's CPU per request
took a new level with every trial (2.5-6% apart), which near the knee moves the capacity by as
much, so one search's interval held the other searches' median in only 3 of 5 cases for a
batched configuration. The study has runs to measure that spread from: the confirmation
pass measures every finalist and reference several times, and a sampler sometimes proposes
the same parameters twice. The pooled standard deviation of their log capacities (each
configuration about its own mean, so their levels do not count) is the run-to-run spread;
combined with a search's own interval in quadrature, it gives the interval a capacity
measured once has among runs.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import optuna

from tuner.study.bounds import is_lower_bound
from tuner.trial_record import CONFIRMATION_ATTR, SAME_PARAMS_ATTR, trial_runs

RUN_SPREAD_ATTR = "run_spread"  # study attr, set by the confirmation pass
MIN_DOF = 2  # fewer degrees of freedom say too little to quote


@dataclass(frozen=True)
class RunSpread:
    cv: float  # the pooled standard deviation of log capacities: a relative spread
    configurations: int  # configurations measured more than once
    runs: int
    dof: int  # runs less configurations

    @property
    def half_width(self) -> float:
        """Relative, 95%: Student's t for the pooled estimate's degrees of freedom."""
        return t_975(self.dof) * self.cv

    def as_dict(self) -> dict:
        return {**asdict(self), "cv": round(self.cv, 5)}

    def text(self) -> str:
        return (
            f"run-to-run spread {self.cv:.1%} (from {self.runs} runs of "
            f"{self.configurations} configurations)"
        )


def pooled(groups: Iterable[list[float]]) -> RunSpread | None:
    """The spread of capacities measured more than once, each list one configuration's runs;
    None with fewer than MIN_DOF degrees of freedom."""
    squares = 0.0
    dof = runs = configurations = 0
    for group in groups:
        logs = [math.log(x) for x in group if x and x > 0]
        if len(logs) < 2:
            continue
        mean = statistics.fmean(logs)
        squares += sum((v - mean) ** 2 for v in logs)
        dof += len(logs) - 1
        runs += len(logs)
        configurations += 1
    if dof < MIN_DOF:
        return None
    return RunSpread(math.sqrt(squares / dof), configurations, runs, dof)


def study_groups(study: optuna.Study) -> list[list[float]]:
    """Each configuration's measured capacities: its confirmation runs (which include the
    trial's own), else its trials' own runs, trials with the same parameters together. A
    run whose search was only a lower bound is no measurement of the spread."""
    confirmed = study.user_attrs.get(CONFIRMATION_ATTR) or {}
    groups: dict[int, list[float]] = {}
    complete = study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.COMPLETE])
    for t in complete:
        root = t.user_attrs.get(SAME_PARAMS_ATTR)
        key = t.number if root is None else int(root)
        groups.setdefault(key, []).extend(
            r["rps"] for r in trial_runs(t, confirmed) if r.get("rps") and not is_lower_bound(r)
        )
    return list(groups.values())


def study_run_spread(study: optuna.Study) -> RunSpread | None:
    return pooled(study_groups(study))


def stored_run_spread(study: optuna.Study) -> RunSpread | None:
    """The spread the confirmation pass recorded, if any."""
    data = study.user_attrs.get(RUN_SPREAD_ATTR)
    return RunSpread(**data) if data else None


def widen(
    estimate: float, low: float, high: float | None, spread: RunSpread | None
) -> tuple[float, float | None]:
    """A search's interval with the run-to-run spread added in quadrature, on each side
    (relative to the estimate); an interval open above stays open."""
    if spread is None or estimate <= 0:
        return low, high
    between = spread.half_width

    def side(within: float) -> float:
        return math.sqrt(within**2 + between**2)

    new_low = estimate * (1 - side(max(0.0, 1 - low / estimate)))
    new_high = None if high is None else estimate * (1 + side(max(0.0, high / estimate - 1)))
    return max(0.0, new_low), new_high


def t_975(dof: int) -> float:
    """Student's t 97.5% quantile, by the Cornish-Fisher expansion about the normal (within
    0.3% of the exact value from 4 degrees of freedom up; table values below that)."""
    exact = {1: 12.706, 2: 4.303, 3: 3.182}
    if dof in exact:
        return exact[dof]
    z = 1.959964
    v = float(dof)
    return (
        z
        + (z**3 + z) / (4 * v)
        + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * v**2)
        + (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / (384 * v**3)
    )

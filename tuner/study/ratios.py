"""A ratio of two configurations' capacities, with its 95% interval.

Measured in the same confirmation rounds (tuner/study/confirm.py), two configurations share each
round's state of the machine, so the ratio is taken round by round (paired), and its
interval is a percentile bootstrap of the median of those ratios over the rounds (at least
MIN_ROUNDS of them). With fewer shared rounds (the demo runs one), the study's run-to-run
spread (tuner/study/run_spread.py) gives it: the log ratio of two means of n_a and n_b runs
varies by cv * sqrt(1/n_a + 1/n_b), with Student's t for the spread's degrees of freedom.
Without a spread, each run's own capacity interval (`capacity_ci_rps`) bounds the ratio:
[low_a / high_b, high_a / low_b] of their medians. When the interval holds 1 the two cannot be
told apart: "tied within the measurement's precision".
"""

from __future__ import annotations

import math
import random
import statistics
from dataclasses import dataclass

import optuna

from tuner.study.run_spread import RunSpread, stored_run_spread
from tuner.trial_record import CONFIRMATION_ATTR, trial_runs

MIN_ROUNDS = 3
RESAMPLES = 2000
TIED = "tied within the measurement's precision"


@dataclass(frozen=True)
class Ratio:
    point: float  # median of a / median of b
    low: float | None
    high: float | None
    how: str  # "paired over 5 rounds", "from the capacities' intervals"

    @property
    def tied(self) -> bool:
        return self.low is not None and self.high is not None and self.low <= 1.0 <= self.high

    def text(self) -> str:
        """ "2.10x [1.95-2.31]", or "2.10x" without an interval."""
        if self.low is None or self.high is None:
            return f"{self.point:.2f}x"
        return f"{self.point:.2f}x [{self.low:.2f}-{self.high:.2f}]"

    def as_list(self) -> list[float | None]:
        return [round(self.point, 4), _r(self.low), _r(self.high)]


def ratio(
    a_runs: list[dict], b_runs: list[dict], seed: int = 0, spread: RunSpread | None = None
) -> Ratio | None:
    """a over b from their runs ({"rps", "round", "ci"}); None when either has no capacity."""
    a = [r["rps"] for r in a_runs if r.get("rps")]
    b = [r["rps"] for r in b_runs if r.get("rps")]
    if not a or not b:
        return None
    point = statistics.median(a) / statistics.median(b)
    paired = _paired(a_runs, b_runs)
    if len(paired) >= MIN_ROUNDS:
        low, high = _bootstrap([x / y for x, y in paired], seed)
        return Ratio(point, low, high, f"paired over {len(paired)} rounds")
    if spread is not None:
        half = spread.half_width * math.sqrt(1 / len(a) + 1 / len(b))
        return Ratio(
            point,
            point * math.exp(-half),
            point * math.exp(half),
            f"from the study's run-to-run spread ({spread.cv:.1%})",
        )
    a_ci, b_ci = _median_ci(a_runs), _median_ci(b_runs)
    if a_ci is None or b_ci is None or b_ci[0] <= 0:
        return Ratio(point, None, None, "no interval: too few rounds")
    return Ratio(point, a_ci[0] / b_ci[1], a_ci[1] / b_ci[0], "from the capacities' intervals")


def runs_of(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> list[dict]:
    """A trial's measurements: the confirmation pass's runs, else its own run."""
    return trial_runs(trial, study.user_attrs.get(CONFIRMATION_ATTR) or {})


def ratio_between(
    study: optuna.Study,
    a: optuna.trial.FrozenTrial,
    b: optuna.trial.FrozenTrial,
    a_value: float,
    b_value: float,
) -> Ratio | None:
    """a's figure over b's, with the 95% interval of their runs (tuner/study/ratios.py); the
    point is the figures quoted beside it."""
    if not b_value:
        return None
    measured = ratio(runs_of(study, a), runs_of(study, b), spread=stored_run_spread(study))
    point = a_value / b_value
    if measured is None:
        return Ratio(point, None, None, "no interval")
    return Ratio(point, measured.low, measured.high, measured.how)


def tie_text(study: optuna.Study, winner: dict | None) -> str:
    """ "; tied within the measurement's precision with trial 4 (1.03x [0.96-1.09])", when
    the confirmation pass could not tell the winner from a finalist."""
    if not winner or not winner.get("tied_with"):
        return ""
    versus = winner.get("versus_runner_up") or [None, None, None]
    point, low, high = versus
    quoted = Ratio(point, low, high, "").text() if point else ""
    others = ", ".join(f"trial {n}" for n in winner["tied_with"])
    return f"; {TIED} with {others}" + (f" ({quoted} its runner-up)" if quoted else "")


def _paired(a_runs: list[dict], b_runs: list[dict]) -> list[tuple[float, float]]:
    b_by_round = {r["round"]: r["rps"] for r in b_runs if r.get("round") is not None}
    return [
        (r["rps"], b_by_round[r["round"]])
        for r in a_runs
        if r.get("round") is not None and r["rps"] and b_by_round.get(r["round"])
    ]


def _bootstrap(ratios: list[float], seed: int) -> tuple[float, float]:
    rng = random.Random(seed)
    medians = sorted(
        statistics.median(rng.choices(ratios, k=len(ratios))) for _ in range(RESAMPLES)
    )
    return medians[int(0.025 * RESAMPLES)], medians[int(0.975 * RESAMPLES) - 1]


def _median_ci(runs: list[dict]) -> tuple[float, float] | None:
    """Medians of the runs' interval ends; None when one is missing or open."""
    cis = [r.get("ci") for r in runs if r.get("rps")]
    if not cis or any(not ci or ci[0] is None or ci[1] is None for ci in cis):
        return None
    return statistics.median(ci[0] for ci in cis), statistics.median(ci[1] for ci in cis)


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)

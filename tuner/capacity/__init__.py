"""Capacity mode: the traffic a configuration sustains within the SLO, found per trial by a
short search over open-loop (Poisson) load steps."""

from tuner.capacity.search import SearchOutcome, SearchSettings, search
from tuner.capacity.step import CurvePoint, StepCriteria, StepResult, judge

__all__ = [
    "CurvePoint",
    "SearchOutcome",
    "SearchSettings",
    "StepCriteria",
    "StepResult",
    "judge",
    "search",
]

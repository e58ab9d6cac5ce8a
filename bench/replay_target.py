"""A recorded surface as the thing a study measures: optimize()'s parts (tuner/study/run.py) whose
capacity measurer runs the tuner's real capacity search over steps built from the surface.

Each search draws one of the point's recorded repeats (or, with `draw = "interval"`, a
capacity from a repeat's 95% interval) and serves every rate up to it within the SLO and
every rate above it far over the SLO; so the incumbent probe, the pruning, the bracketing and
the confirmation pass all run as in a real study. What a search costs is simulated, never
slept: the point's recorded seconds, times the share of a whole search's steps it ran (a
search pruned after one step costs a fraction of one that ran to the end).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from pathlib import Path

from bench.surface_file import Key, Surface, SurfaceError
from model_server.batching_parameters import BatchingParameters, render
from search_spaces.loader import SearchSpace, SearchSpaceError
from tests.support.fake_measurer import FakeCapacityMeasurer, FakeMeasurer, Served, fake_parts
from tuner.capacity.search import SearchSettings
from tuner.capacity.search_run import CapacityMeasurement, OnStep
from tuner.capacity.step import StepCriteria
from tuner.load import LoadProfile
from tuner.study.run import Parts

DRAWS = ("repeats", "interval")


@dataclass(frozen=True)
class Spent:
    workdir: str  # trial-NNNN, or confirm-trial-NNNN-R for the confirmation pass
    key: Key
    seconds: float
    pruned: bool


@dataclass
class SurfaceTarget:
    surface: Surface
    space: SearchSpace
    rng: random.Random
    slo_ms: float
    draw: str = "repeats"
    spent: list[Spent] = field(default_factory=list)
    current: float = 0.0  # the capacity the search under way is serving
    _keys: dict[tuple, Key] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = set(self.space.param_names)
        if names != set(self.surface.params):
            raise SurfaceError(
                f"the surface's parameters ({', '.join(self.surface.params)}) are not those of "
                f"the space {self.space.name!r} ({', '.join(self.space.param_names)}); pass the "
                "space it was recorded on with --space"
            )
        try:
            grid = self.space.grid()
        except SearchSpaceError as exc:
            raise SurfaceError(str(exc)) from None
        for key in self.surface.points:
            if key:
                s = self.space.suggestion_for(self.surface.as_params(key))
                self._keys[_identity(s.batching, s.server_flags)] = key
        missing = _grid_size(grid) + 1 - len(self.surface.points)
        if missing > 0 or () not in self.surface.points:
            raise SurfaceError(
                f"the surface misses {max(missing, 1)} of the {_grid_size(grid) + 1} points of "
                f"the space {self.space.name!r} (every grid point and no batching); record them "
                "with bench/surface.py (it resumes)"
            )

    def key_for(self, batching: BatchingParameters | None, flags: dict[str, str]) -> Key:
        if batching is None:
            return ()
        key = self._keys.get(_identity(batching, flags))
        if key is None:
            raise SurfaceError("a trial measured a point the surface does not hold")
        return key

    def draw_capacity(self, key: Key) -> tuple[float, float]:
        """(capacity, recorded seconds) of one search of the point."""
        rows = self.surface.points[key]
        measured = self.surface.measured(key)
        if not measured:
            return 0.0, self.rng.choice(rows).seconds
        row = self.rng.choice(measured)
        capacity = row.capacity_rps
        if self.draw == "interval" and row.ci_low is not None and row.ci_high is not None:
            capacity = max(0.0, self.rng.gauss(capacity, (row.ci_high - row.ci_low) / 3.92))
        return capacity, row.seconds

    def served(self, batching, flags, rate: float | None) -> Served:
        """Within the SLO up to the drawn capacity, far over it (and short of goodput) above."""
        if rate is not None and rate <= self.current:
            return Served(rps=rate, p95_ms=0.5 * self.slo_ms)
        return Served(rps=min(rate or 0.0, self.current), p95_ms=4 * self.slo_ms)


class ReplayCapacityMeasurer(FakeCapacityMeasurer):
    """The real search over the surface's steps, and what each search cost."""

    def __init__(
        self,
        fake: FakeMeasurer,
        profile: LoadProfile,
        settings: SearchSettings,
        criteria: StepCriteria,
        target: SurfaceTarget,
    ) -> None:
        super().__init__(fake, profile, settings, criteria)
        self.target = target

    def measure(
        self,
        batching: BatchingParameters | None,
        server_flags: dict[str, str],
        workdir: Path,
        *,
        start_rps: float,
        incumbent_rps: float | None = None,
        incumbent_low: float | None = None,
        may_prune: bool = True,
        on_step: OnStep | None = None,
    ) -> CapacityMeasurement:
        key = self.target.key_for(batching, server_flags)
        capacity, seconds = self.target.draw_capacity(key)
        self.target.current = capacity
        m = super().measure(
            batching,
            server_flags,
            workdir,
            start_rps=start_rps,
            incumbent_rps=incumbent_rps,
            incumbent_low=incumbent_low,
            may_prune=may_prune,
            on_step=on_step,
        )
        steps = len(m.outcome.points)
        if may_prune and incumbent_rps:  # how many steps it would have run to the end
            whole = super().measure(batching, server_flags, workdir, start_rps=start_rps)
            seconds *= min(1.0, steps / max(1, len(whole.outcome.points)))
        self.target.spent.append(
            Spent(workdir.name, key, seconds, pruned=bool(m.outcome.pruned_because))
        )
        return m


def replay_parts(target: SurfaceTarget) -> Parts:
    """optimize()'s parts measuring `target` (fake backend and service: no process)."""
    fake = FakeMeasurer(target.served)
    parts = fake_parts(fake)

    def capacity_measurer(_measurer, profile, settings, criteria) -> ReplayCapacityMeasurer:
        return ReplayCapacityMeasurer(fake, profile, settings, criteria, target)

    return Parts(
        create_backend=parts.create_backend,
        service_for=parts.service_for,
        measurer=parts.measurer,
        capacity_measurer=capacity_measurer,
    )


def _identity(batching: BatchingParameters | None, flags: dict[str, str]) -> tuple:
    return (render(batching) if batching else "", tuple(sorted(flags.items())))


def _grid_size(grid: dict[str, list]) -> int:
    return math.prod(len(values) for values in grid.values())

"""A synthetic capacity surface with a known best, for the replay's tests and a first look
before a surface is recorded (bench/surface.py records a real one).

Every point of the space is scored by how far each parameter's value sits from a chosen best
value (in positions along the parameter's values), so the best is unique and every parameter
matters; each point gets `repeats` rows with multiplicative noise and a 95% interval of
+-`noise` x 1.96, and costs `seconds_per_search` (more for a slow point). No batching
measures `no_batching_fraction` of the best.

    python -m bench.synthetic_surface --space quick --out surface.csv
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from pathlib import Path

from bench.surface_file import Row, Surface, write_surface
from search_spaces.loader import SearchSpace, load_space


def synthetic_surface(
    space: SearchSpace,
    *,
    space_ref: str | None = None,
    best_rps: float = 1000.0,
    best: dict[str, object] | None = None,
    penalty: float = 0.12,
    noise: float = 0.02,
    repeats: int = 2,
    seconds_per_search: float = 30.0,
    no_batching_fraction: float = 0.4,
    infeasible_share: float = 0.1,
    seed: int = 0,
) -> Surface:
    """A surface on every grid point of `space`; `best` (default: a point chosen by `seed`
    away from TF Serving's recommended start) is the unique best."""
    rng = random.Random(seed)
    grid = space.grid()
    names = list(grid)
    if best is None:
        best = {name: rng.choice(values) for name, values in grid.items()}
    surface = Surface(names, space=space_ref or space.name)
    for values in itertools.product(*grid.values()):
        distance = sum(
            abs(grid[n].index(v) - grid[n].index(best[n]))
            for n, v in zip(names, values, strict=True)
        )
        true = best_rps * (1 - penalty) ** distance
        if distance >= 3 and rng.random() < infeasible_share:
            true = 0.0  # some far points break the SLO at any rate
        surface.points[tuple(values)] = _rows(rng, true, noise, repeats, seconds_per_search)
    surface.points[()] = _rows(
        rng, best_rps * no_batching_fraction, noise, repeats, seconds_per_search
    )
    return surface


def _rows(rng: random.Random, true: float, noise: float, repeats: int, seconds: float) -> list[Row]:
    rows = []
    for repeat in range(repeats):
        capacity = true * (1 + rng.gauss(0, noise)) if true else 0.0
        half = 1.96 * noise * capacity
        rows.append(
            Row(
                capacity_rps=round(capacity, 1),
                ci_low=round(capacity - half, 1) if true else None,
                ci_high=round(capacity + half, 1) if true else None,
                repeat=repeat,
                seconds=round(seconds * (1.5 if not true else 1.0) * rng.uniform(0.8, 1.2), 1),
                pruned=False,
            )
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--space", default="quick")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    surface = synthetic_surface(load_space(args.space), space_ref=args.space, seed=args.seed)
    write_surface(args.out, surface, ["synthetic (bench/synthetic_surface.py): not a measurement"])
    print(f"best {surface.best:.1f} req/s at {surface.as_params(surface.best_key)}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

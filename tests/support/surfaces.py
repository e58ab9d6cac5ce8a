"""A small search space and a synthetic surface on it with a known best (no measurement)."""

from __future__ import annotations

from pathlib import Path

from bench.surface_file import Surface, write_surface
from bench.synthetic_surface import synthetic_surface
from search_spaces.loader import load_space

SMALL_SPACE = """\
description = "12 points: enough to tell samplers apart in a few seconds"
[batching]
max_batch_size = { choices = [8, 32, 128] }
batch_timeout_micros = { choices = [0, 1000] }
num_batch_threads = { choices = [1, 2] }
max_enqueued_batches = 32
"""
BEST = {"max_batch_size": 32, "batch_timeout_micros": 1000, "num_batch_threads": 2}


def small_surface(tmp_path: Path, **options) -> tuple[Path, Surface]:
    """`small.toml` and `surface.csv` in tmp_path; the best is BEST at 1000 req/s."""
    space_file = tmp_path / "small.toml"
    space_file.write_text(SMALL_SPACE)
    surface = synthetic_surface(
        load_space(space_file), space_ref="small.toml", best=BEST, infeasible_share=0, **options
    )
    path = tmp_path / "surface.csv"
    write_surface(path, surface)
    return path, surface

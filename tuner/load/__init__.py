"""Load generation: the closed-loop Locust profile and open-loop (Poisson) steps, each run in
a Locust subprocess whose per-interval stream is read back as it comes."""

from tuner.load.generator import OpenLoopGenerator
from tuner.load.runner import run_load
from tuner.load.spec import (
    IntervalSample,
    LoadGeneratorError,
    LoadProfile,
    LoadProfileError,
    LoadResult,
)

__all__ = [
    "IntervalSample",
    "LoadGeneratorError",
    "LoadProfile",
    "LoadProfileError",
    "LoadResult",
    "OpenLoopGenerator",
    "run_load",
]

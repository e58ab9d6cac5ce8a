"""What the study benchmarks (tuner_bench, capacity_bench) share: their progress lines and
the spread of repeated figures, computed one way so their tables compare."""

from __future__ import annotations

import statistics
from collections.abc import Callable


def say(study: str) -> Callable[[str], None]:
    """The tuner's progress lines, prefixed with the benchmark study they come from."""
    return lambda line: print(f"[{study}] {line}", flush=True)


def spread(values: list[float], digits: int = 1) -> dict:
    """Values, median, min-max and CV (None where there are too few values to say)."""
    mean = statistics.fmean(values) if values else 0.0
    return {
        "values": [round(v, digits) for v in values],
        "median": round(statistics.median(values), digits) if values else None,
        "min": round(min(values), digits) if values else None,
        "max": round(max(values), digits) if values else None,
        "cv_percent": (
            round(100 * statistics.stdev(values) / mean, 1) if len(values) > 1 and mean else None
        ),
    }

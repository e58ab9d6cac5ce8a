"""What the study benchmarks (tuner_bench, capacity_bench, capacity_precision, demo_winners)
share: their progress lines, the spread of repeated figures, computed one way so their tables
compare, and their working directory and results file."""

from __future__ import annotations

import json
import shutil
import statistics
from collections.abc import Callable
from pathlib import Path


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


def fresh_dir(path: Path) -> Path:
    """The benchmark's working directory, emptied of the last run's studies."""
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def write_results(path: Path, results: dict, summary: str) -> None:
    """The JSON under bench/out, and its summary on stdout."""
    path.write_text(json.dumps(results, indent=2) + "\n")
    print(summary)
    print(f"written to {path}")

"""Loading a search space and turning it into Optuna suggestions.

The file format is documented in search_spaces/format.py. A space is validated when it loads
(search_spaces/validation.py), so `suggest` never produces a configuration TF Serving refuses.
"""

from __future__ import annotations

import logging
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import optuna

from model_server.batching_parameters import BatchingParameters
from search_spaces.dimensions import Dimension, Value
from search_spaces.errors import SearchSpaceError
from search_spaces.format import ParsedSpace, parse_document
from search_spaces.timeouts import sub_millisecond_warning
from search_spaces.validation import check_batching, make_batching

__all__ = [
    "DEFAULT_SPACE",
    "MAX_GRID_POINTS",
    "SearchSpace",
    "SearchSpaceError",
    "Suggestion",
    "available_spaces",
    "load_space",
]

log = logging.getLogger("search_spaces")

SPACES_DIR = Path(__file__).resolve().parent
DEFAULT_SPACE = "cpu"
# A grid trial takes tens of seconds; beyond this a full grid does not finish in a working day.
MAX_GRID_POINTS = 1000


@dataclass(frozen=True)
class Suggestion:
    """What one trial runs: validated batching parameters and TF Serving flags (as strings)."""

    batching: BatchingParameters
    server_flags: dict[str, str]
    params: dict[str, Value] = field(default_factory=dict)  # the Optuna params behind it


class SearchSpace:
    """A loaded, validated space; param names are the file's keys."""

    def __init__(self, name: str, source: Path, parsed: ParsedSpace) -> None:
        self.name = name
        self.source = source
        self.description = parsed.description
        self._batching = parsed.batching
        self._flags = parsed.server_flags
        timeout = parsed.batching.get("batch_timeout_micros")
        warning = sub_millisecond_warning(timeout, str(source)) if timeout is not None else None
        self.warnings: list[str] = [warning] if warning else []

    def _dims(self) -> dict[str, Dimension]:
        return {**self._batching, **self._flags}

    @property
    def param_names(self) -> list[str]:
        """Names of the Optuna parameters (tuned keys), batching first, in file order."""
        return [name for name, dim in self._dims().items() if dim.tuned]

    def suggest(self, trial: optuna.Trial) -> Suggestion:
        values = {name: dim.suggest(trial, name) for name, dim in self._dims().items()}
        return self._build(values)

    def _build(self, values: Mapping[str, Value]) -> Suggestion:
        batching = make_batching({k: v for k, v in values.items() if k in self._batching})
        flags = {k: str(int(v)) for k, v in values.items() if k in self._flags}
        params = {k: v for k, v in values.items() if self._dims()[k].tuned}
        return Suggestion(batching=batching, server_flags=flags, params=params)

    def suggestion_for(self, params: Mapping[str, Value]) -> Suggestion:
        """What a trial with these (tuned) parameters runs, the fixed values filled in."""
        dims = self._dims()
        return self._build(
            {n: params[n] if d.tuned else d.grid_values()[0] for n, d in dims.items()}
        )

    def holds(self, name: str, value: object) -> bool:
        """Whether `name` is a tuned parameter of this space and `value` one of its values."""
        dim = self._dims().get(name)
        return dim is not None and dim.tuned and dim.contains(value)

    def grid(self, max_points: int = MAX_GRID_POINTS) -> dict[str, list]:
        """The search space for optuna.samplers.GridSampler, with the same param names.

        Ranges expand with their step; log ranges double from low and end at high.
        """
        grid = {name: dim.grid_values() for name, dim in self._dims().items() if dim.tuned}
        points = math.prod(len(values) for values in grid.values())
        if points > max_points:
            raise SearchSpaceError(
                str(self.source),
                "grid",
                f"a grid over this space has {points:,} points, more than {max_points:,}; "
                "use the tpe or random sampler with it, or a smaller space such as quick",
            )
        return grid

    def reference_params(self, num_cores: int) -> dict[str, object]:
        """TF Serving's recommended CPU starting point, snapped into this space.

        From the batching guide: num_batch_threads = cores, batch_timeout_micros = 0,
        max_batch_size "infinity" (the largest in the space), max_enqueued_batches =
        num_batch_threads for online serving, no allowed_batch_sizes, TensorFlow's default
        thread pools (0). For `study.enqueue_trial`; only tuned keys are returned.
        """
        cores = max(1, int(num_cores))
        wanted: dict[str, Value] = {
            "max_batch_size": 1 << 30,
            "batch_timeout_micros": 0,
            "num_batch_threads": cores,
            "allowed_batch_sizes": "none",
            "pad_variable_length_inputs": False,
            "tensorflow_intra_op_parallelism": 0,
            "tensorflow_inter_op_parallelism": 0,
            "rest_api_num_threads": 4 * cores,  # TF Serving's default
        }
        dims = self._dims()
        result: dict[str, object] = {}
        for name, dim in dims.items():
            if name == "max_enqueued_batches":
                continue
            if dim.tuned:
                result[name] = dim.nearest(wanted[name])
        if "max_enqueued_batches" in dims and dims["max_enqueued_batches"].tuned:
            threads = result.get("num_batch_threads", cores)
            result["max_enqueued_batches"] = dims["max_enqueued_batches"].nearest(threads)
        return result

    def __repr__(self) -> str:
        return f"SearchSpace(name={self.name!r}, source={str(self.source)!r})"


def available_spaces() -> list[str]:
    """Names of the spaces shipped in search_spaces/ (the default, cpu, first)."""
    names = sorted(path.stem for path in SPACES_DIR.glob("*.toml"))
    return sorted(names, key=lambda n: n != DEFAULT_SPACE)


def load_space(name_or_path: str | Path) -> SearchSpace:
    """A shipped space by name (`cpu`, `gpu`, `quick`) or any TOML file by path."""
    text = str(name_or_path)
    path = Path(name_or_path).expanduser()
    shipped_name = text.removesuffix(".toml")
    if isinstance(name_or_path, str) and text in available_spaces():
        path = SPACES_DIR / f"{text}.toml"
    elif not path.exists() and "/" not in text and shipped_name in available_spaces():
        path = SPACES_DIR / f"{shipped_name}.toml"  # "quick.toml" from any directory
    source = str(path)
    if not path.is_file():
        shipped = ", ".join(available_spaces())
        raise SearchSpaceError(
            text,
            None,
            f"no such file and no shipped space of that name; use one of {shipped} "
            "or the path of a .toml file",
        )
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise SearchSpaceError(source, None, f"not valid TOML ({exc}); fix the syntax") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SearchSpaceError(source, None, f"cannot read the file ({exc})") from None
    parsed = parse_document(doc, source)
    check_batching(parsed.batching, source)
    space = SearchSpace(path.stem, path.resolve(), parsed)
    for warning in space.warnings:  # one line on stderr through the CLI's logging
        log.warning("event=search_space_warning %s", warning)
    return space

"""The search-space file format (TOML), and its parser.

A search space is a TOML file with an optional `description` and two tables::

    description = "CPU serving of a small model"

    [batching]                      # TF Serving BatchingParameters fields
    max_batch_size = { low = 1, high = 128, log = true }
    batch_timeout_micros = { low = 0, high = 20000, step = 1000 }
    num_batch_threads = { choices = [1, 2, 4, 8] }
    max_enqueued_batches = 100      # a plain value fixes the field (not tuned)
    allowed_batch_sizes = { choices = ["none", "powers_of_two", "linear_4"] }
    pad_variable_length_inputs = false

    [server_flags]                  # TF Serving command-line flags
    tensorflow_intra_op_parallelism = { choices = [0, 1, 2] }

Each key takes one of three forms:

- `{ low = L, high = H }` with optional `step = S` (H - L a multiple of S) or `log = true`
  (log-uniform, needs L >= 1, no step): an integer range, bounds included;
- `{ choices = [...] }`: one of the listed values, at least one, no duplicates;
- a plain value: fixed for every trial and not an Optuna parameter.

Keys left out are not set, i.e. TF Serving's defaults apply to them.

`[batching]` keys: `max_batch_size`, `batch_timeout_micros`, `num_batch_threads`,
`max_enqueued_batches` (integers), `allowed_batch_sizes` (a strategy name, see
search_spaces/strategies.py: `none`, `powers_of_two`, `linear_N`), and
`pad_variable_length_inputs` (true/false). `[server_flags]` keys:
`tensorflow_intra_op_parallelism`, `tensorflow_inter_op_parallelism` (0 = TensorFlow's default),
`rest_api_num_threads` (integers). Flags the tuner sets itself (ports, model, batching file)
cannot appear here.

The Optuna parameter of each tuned key has the key's own name (`max_batch_size`,
`tensorflow_intra_op_parallelism`, ...), so trials of different spaces compare in the dashboard.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from search_spaces.dimensions import Choices, Dimension, Fixed, IntRange
from search_spaces.errors import SearchSpaceError
from search_spaces.strategies import unknown_strategy_reason


@dataclass(frozen=True)
class _Kind:
    """What a key accepts: integers between `minimum` and `sane_max`, a strategy, or a bool."""

    type: str  # "int" | "strategy" | "bool"
    minimum: int = 0
    sane_max: int = 0


BATCHING_KEYS: dict[str, _Kind] = {
    "max_batch_size": _Kind("int", 0, 65536),
    "batch_timeout_micros": _Kind("int", 0, 10_000_000),
    "num_batch_threads": _Kind("int", 0, 256),
    "max_enqueued_batches": _Kind("int", 0, 1_000_000),
    "allowed_batch_sizes": _Kind("strategy"),
    "pad_variable_length_inputs": _Kind("bool"),
}
# Batching fields get their lower bounds from TF Serving's rules (checked through
# BatchingParameters when the space loads); flags have no such check, so they carry their own.
SERVER_FLAG_KEYS: dict[str, _Kind] = {
    "tensorflow_intra_op_parallelism": _Kind("int", 0, 256),
    "tensorflow_inter_op_parallelism": _Kind("int", 0, 256),
    "rest_api_num_threads": _Kind("int", 1, 1024),
}
TOP_LEVEL_KEYS = ("description", "batching", "server_flags")


@dataclass(frozen=True)
class ParsedSpace:
    description: str
    batching: dict[str, Dimension]
    server_flags: dict[str, Dimension]


def parse_document(doc: dict[str, Any], source: str) -> ParsedSpace:
    for key in doc:
        if key not in TOP_LEVEL_KEYS:
            raise SearchSpaceError(
                source, key, f"unknown key; the top level takes {', '.join(TOP_LEVEL_KEYS)}"
            )
    description = doc.get("description", "")
    if not isinstance(description, str):
        raise SearchSpaceError(source, "description", "must be a string")
    tables = {}
    for table, keys in (("batching", BATCHING_KEYS), ("server_flags", SERVER_FLAG_KEYS)):
        raw = doc.get(table, {})
        if not isinstance(raw, dict):
            raise SearchSpaceError(source, table, "must be a table, e.g. [batching]")
        dims: dict[str, Dimension] = {}
        for name, value in raw.items():
            where = f"{table}.{name}"
            if name not in keys:
                raise SearchSpaceError(
                    source, where, f"unknown key; [{table}] takes {', '.join(keys)}"
                )
            dims[name] = _parse_dimension(value, keys[name], source, where)
        tables[table] = dims
    if not tables["batching"] and not tables["server_flags"]:
        raise SearchSpaceError(
            source, "batching", "the space has no parameters; add at least one key to [batching]"
        )
    return ParsedSpace(description, tables["batching"], tables["server_flags"])


def _parse_dimension(raw: Any, kind: _Kind, source: str, where: str) -> Dimension:
    if not isinstance(raw, dict):
        return Fixed(_check_value(raw, kind, source, where))
    keys = set(raw)
    if "choices" in keys:
        if keys != {"choices"}:
            raise SearchSpaceError(
                source, where, "give either choices or low/high/step/log, not both"
            )
        choices = raw["choices"]
        if not isinstance(choices, list) or not choices:
            raise SearchSpaceError(source, where, "choices must be a non-empty list")
        values = tuple(_check_value(v, kind, source, where) for v in choices)
        if len(set(values)) != len(values):
            raise SearchSpaceError(source, where, f"choices {list(choices)} repeat a value")
        return Choices(values)
    unknown = keys - {"low", "high", "step", "log"}
    if unknown:
        raise SearchSpaceError(
            source,
            where,
            f"unknown field {sorted(unknown)[0]!r}; use low, high, step, log or choices",
        )
    if kind.type != "int":
        raise SearchSpaceError(
            source, where, f"a {kind.type} cannot be a range; use {{ choices = [...] }}"
        )
    if "low" not in keys or "high" not in keys:
        raise SearchSpaceError(source, where, "a range needs both low and high")
    low = _check_value(raw["low"], kind, source, f"{where}.low")
    high = _check_value(raw["high"], kind, source, f"{where}.high")
    step = raw.get("step", 1)
    log = raw.get("log", False)
    if not isinstance(log, bool):
        raise SearchSpaceError(source, f"{where}.log", f"must be true or false, got {log!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 1:
        raise SearchSpaceError(source, f"{where}.step", f"must be an integer >= 1, got {step!r}")
    if low > high:
        raise SearchSpaceError(
            source, where, f"empty range: low ({low}) is greater than high ({high}); swap them"
        )
    if log and step != 1:
        raise SearchSpaceError(source, where, "a log range cannot have a step; drop one of them")
    if log and low < 1:
        raise SearchSpaceError(source, where, f"a log range needs low >= 1, got {low}")
    if (high - low) % step:
        raise SearchSpaceError(
            source,
            where,
            f"high ({high}) is not reachable from low ({low}) in steps of {step}; "
            f"use high = {high - (high - low) % step}",
        )
    return IntRange(low, high, step, log)


def _check_value(value: Any, kind: _Kind, source: str, where: str) -> Any:
    if kind.type == "bool":
        if not isinstance(value, bool):
            raise SearchSpaceError(source, where, f"must be true or false, got {value!r}")
        return value
    if kind.type == "strategy":
        reason = unknown_strategy_reason(value)
        if reason:
            raise SearchSpaceError(source, where, reason)
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise SearchSpaceError(source, where, f"must be an integer, got {value!r}")
    if value < kind.minimum:
        word = "negative" if value < 0 else "too small"
        raise SearchSpaceError(
            source, where, f"{value} is {word}; the smallest allowed value is {kind.minimum}"
        )
    if value > kind.sane_max:
        raise SearchSpaceError(
            source, where, f"{value} is above the sane limit of {kind.sane_max}; lower it"
        )
    return value

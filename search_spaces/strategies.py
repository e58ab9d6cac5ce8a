"""`allowed_batch_sizes` as a strategy of max_batch_size rather than a literal list.

TF Serving requires the list to end at max_batch_size (bundle_factory_util.cc) and pads to the
first entry that fits, so a literal list would tie every trial to one max_batch_size. A
strategy derives a valid list from whatever max_batch_size the trial picked:

- `none`: no list; batches run at whatever size they closed with (no padding).
- `powers_of_two`: 1, 2, 4, ... below max_batch_size, then max_batch_size itself
  (max 48 -> 1 2 4 8 16 32 48). Few distinct shapes, at most 2x padding.
- `linear_N` (N from 2 to 32): N evenly spaced sizes ending at max_batch_size, rounded up
  (max 64, linear_4 -> 16 32 48 64). Bounded padding of max/N rows per batch.

Padding to a few fixed sizes helps when the runtime compiles one kernel per shape (XLA, GPUs);
on CPU `none` is usually best, and the tuner measures that instead of guessing.
"""

from __future__ import annotations

import re

_LINEAR = re.compile(r"linear_(\d+)")
LINEAR_MIN, LINEAR_MAX = 2, 32
STRATEGY_NAMES = ("none", "powers_of_two", f"linear_N (N = {LINEAR_MIN}..{LINEAR_MAX})")


def unknown_strategy_reason(name: object) -> str | None:
    """None when `name` is a known strategy, else why not (one clause)."""
    if name in ("none", "powers_of_two"):
        return None
    if isinstance(name, str):
        match = _LINEAR.fullmatch(name)
        if match and LINEAR_MIN <= int(match.group(1)) <= LINEAR_MAX:
            return None
    return f"unknown strategy {name!r}; use one of " + ", ".join(STRATEGY_NAMES)


def allowed_batch_sizes(strategy: str, max_batch_size: int) -> tuple[int, ...]:
    """The list for `strategy`; always strictly increasing and ending at max_batch_size."""
    if unknown_strategy_reason(strategy) is not None:
        raise ValueError(unknown_strategy_reason(strategy))
    if strategy == "none":
        return ()
    if strategy == "powers_of_two":
        sizes = []
        size = 1
        while size < max_batch_size:
            sizes.append(size)
            size *= 2
        return (*sizes, max_batch_size)
    count = int(strategy.split("_", 1)[1])
    sizes = sorted({-(-max_batch_size * k // count) for k in range(1, count + 1)})
    return tuple(sizes)

"""Why sub-millisecond batch timeouts are not worth tuning, and the warning that says so.

TF Serving's batch threads look for a due batch every kTimeoutMillis = 1 ms when idle
(tensorflow/core/kernels/batching_util/shared_batch_scheduler.h, ThreadLogic) and nothing
fires when a timeout expires, so a batch leaves at the first re-check after its timeout:
every value from 1 to 999 us behaves alike, and steps finer than 1 ms mostly measure noise.
0 is different (a thread is woken at enqueue). The shipped spaces use 0 or whole
milliseconds; a user's space with finer values still loads, with one warning line.
"""

from __future__ import annotations

from search_spaces.dimensions import Choices, Dimension, Fixed, IntRange

__all__ = ["GRANULE_US", "sub_millisecond_warning"]

GRANULE_US = 1000  # kTimeoutMillis


def _sub_ms(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value < GRANULE_US


def sub_millisecond_warning(dim: Dimension, source: str) -> str | None:
    """One sentence when `dim` (batch_timeout_micros) tunes below TF Serving's 1 ms granule."""
    finer = False
    if isinstance(dim, IntRange):
        finer = _sub_ms(dim.low) or (dim.high > dim.low and (dim.log or dim.step < GRANULE_US))
    elif isinstance(dim, Choices):
        finer = any(_sub_ms(v) for v in dim.values)
    elif isinstance(dim, Fixed):
        finer = _sub_ms(dim.value)
    if not finer:
        return None
    return (
        f"search space {source}: batch_timeout_micros {dim.describe()} has sub-millisecond "
        "values or steps, which TF Serving cannot tell apart (its batch threads re-check "
        "every 1 ms); prefer 0 or whole milliseconds, e.g. { low = 0, high = 20000, "
        "step = 1000 }"
    )

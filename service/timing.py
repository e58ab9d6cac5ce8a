"""Per-request timings: where a request's time went, for the log line and Server-Timing.

`total` is measured by the outermost middleware (from the app receiving the request to the
response headers being sent, the body being built by then), independently of the parts the
endpoint measures. So "the parts explain >= 95% of the total" is a real check: time spent
outside the measured parts (routing, middleware, response plumbing) shows up as a gap.
"""

from __future__ import annotations

from time import perf_counter

PARTS = ("preprocess", "inference", "postprocess")


class RequestTimings:
    """Durations in seconds; a part is None when the request never reached it."""

    __slots__ = ("inference", "postprocess", "preprocess", "start", "texts", "total")

    def __init__(self) -> None:
        self.start = perf_counter()
        self.preprocess: float | None = None
        self.inference: float | None = None
        self.postprocess: float | None = None
        self.total: float | None = None
        self.texts: int | None = None

    def finish(self) -> float:
        self.total = perf_counter() - self.start
        return self.total

    def server_timing(self) -> str:
        """The Server-Timing header value (durations in milliseconds)."""
        entries = [
            f"{name};dur={value * 1000.0:.3f}"
            for name, value in (
                ("preprocess", self.preprocess),
                ("inference", self.inference),
                ("postprocess", self.postprocess),
                ("total", self.total),
            )
            if value is not None
        ]
        return ", ".join(entries)

    def log_fields(self) -> dict[str, float | int]:
        """`<part>_ms` for each measured part and the total, rounded to microseconds."""
        out: dict[str, float | int] = {}
        if self.texts is not None:
            out["texts"] = self.texts
        for name in PARTS:
            value = getattr(self, name)
            if value is not None:
                out[f"{name}_ms"] = round(value * 1000.0, 3)
        if self.total is not None:
            out["total_ms"] = round(self.total * 1000.0, 3)
        return out

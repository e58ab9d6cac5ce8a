"""Reading the service's Server-Timing header back, as a client would."""

from __future__ import annotations


def parse_server_timing(header: str) -> dict[str, float]:
    """`{"preprocess": ms, ...}` from a Server-Timing value."""
    result: dict[str, float] = {}
    for entry in header.split(","):
        name, _, params = entry.strip().partition(";")
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key == "dur":
                result[name] = float(value)
    return result

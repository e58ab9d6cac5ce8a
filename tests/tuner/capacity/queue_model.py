"""The M/D/1 queue, simulated: Poisson arrivals, one FIFO server, a deterministic service
time (and M/M/1, with exponential service times, beside it). Lindley's recursion gives every
customer's wait exactly; with a fixed seed the p95 of the sojourn time (wait + service) at a
rate is a reproducible number computed from the model, not one copied from a measurement."""

from __future__ import annotations

import numpy as np

WARMUP_CUSTOMERS = 2_000


def sojourn_p95_s(rate: float, service_s: float, n: int = 60_000, seed: int = 1) -> float:
    return float(np.percentile(sojourns_s(rate, service_s, n, seed)[WARMUP_CUSTOMERS:], 95))


def rate_at_p95(slo_s: float, service_s: float, iterations: int = 24) -> float:
    """The arrival rate whose sojourn p95 equals `slo_s` (bisection; p95 grows with the rate,
    and common random numbers keep it monotone across the bisection)."""
    lo, hi = 0.0, 1.0 / service_s
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if sojourn_p95_s(mid, service_s) <= slo_s:
            lo = mid
        else:
            hi = mid
    return lo


def sojourns_s(rate: float, service_s: float, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return lindley(rng.exponential(1.0 / rate, n), np.full(n, service_s))


def mm1_sojourns_s(rate: float, service_s: float, n: int, seed: int) -> np.ndarray:
    """The same on an M/M/1 queue: exponential service times, a softer knee."""
    rng = np.random.default_rng(seed)
    gaps = rng.exponential(1.0 / rate, n)
    return lindley(gaps, rng.exponential(service_s, n))


def lindley(gaps: np.ndarray, services: np.ndarray) -> np.ndarray:
    """Every customer's sojourn (wait + service) from the gaps between arrivals."""
    out = np.empty(len(gaps))
    wait = 0.0
    for i in range(len(gaps)):
        if i:
            wait = max(0.0, wait + services[i - 1] - gaps[i])
        out[i] = wait + services[i]
    return out


def window_fail_probability(
    rate: float, service_s: float, slo_s: float, window_s: float, windows: int = 120, seed: int = 2
) -> float:
    """How often one measured window's p95 (over the requests of `window_s` seconds) breaks
    `slo_s` at `rate`: what the search sees, noise included."""
    per_window = max(20, round(rate * window_s))
    sojourn = sojourns_s(rate, service_s, WARMUP_CUSTOMERS + windows * per_window, seed)
    chunks = sojourn[WARMUP_CUSTOMERS:].reshape(windows, per_window)
    return float(np.mean(np.percentile(chunks, 95, axis=1) > slo_s))


def rate_with_fail_probability(
    p: float, service_s: float, slo_s: float, window_s: float, iterations: int = 16
) -> float:
    """The rate at which a window breaks the SLO with probability `p` (bisection)."""
    lo, hi = 0.0, 1.0 / service_s
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if window_fail_probability(mid, service_s, slo_s, window_s) <= p:
            lo = mid
        else:
            hi = mid
    return lo

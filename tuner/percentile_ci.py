"""A distribution-free confidence interval for a percentile of a window's latencies.

Order statistics (as Lancet, Kogias et al., ATC'19): for n independent requests, the number at
or below the true p-quantile is Binomial(n, p), so the ranks n*p -+ z*sqrt(n*p*(1-p)) bound
it, whatever the latency distribution. Requests of a queue are not independent: one slow
moment delays many neighbours, and the count above the quantile varies more than a binomial
does. So the binomial variance is widened by the variance inflation measured with batch means
(the requests in completion order cut into BATCHES consecutive batches; the variance of the
batches' shares above the estimated quantile, against the binomial's), and, that variance
being estimated from BATCHES values, the normal quantile becomes Student's t with BATCHES-1
degrees of freedom: a window whose slow requests come in bursts gets a wider interval.

Measured on a simulated M/D/1 queue (p95, 3-s windows; tests/tuner/test_percentile_ci.py):
coverage 0.96-1.0 up to 60% utilisation, 0.91 at 75%, 0.86 at 85% (a queue
that near saturation remembers longer than a short window shows). Five batches covered best
of 5, 10 and 20; an autocorrelation-sum estimate did no better.

Pure arithmetic, in no package: the load generator's windows use it, and so do the readers of
stored steps (the capacity's interval in `show` and `export`), which must not import the
generator's stack.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

Z95 = 1.959964  # two-sided 95%
BATCHES = 5
T95_BATCHES = 2.776445  # Student's t, 4 degrees of freedom, two-sided 95%
MIN_BATCH = 5  # fewer requests per batch: no inflation estimate (independence assumed)


@dataclass(frozen=True)
class PercentileInterval:
    low: float | None  # None: no order statistic is low enough (too few requests)
    high: float | None  # None: unbounded above (too few requests for this percentile)
    inflation: float  # the batch-means variance inflation (1 = as if independent)

    def as_list(self) -> list[float | None]:
        return [
            None if self.low is None else round(self.low, 2),
            None if self.high is None else round(self.high, 2),
        ]


def inflation(in_order: Sequence[float], p: float, threshold: float) -> float:
    """Variance of the share above `threshold` over consecutive batches, relative to what
    independent requests would give; at least 1."""
    n = len(in_order)
    size = n // BATCHES
    if size < MIN_BATCH or not 0 < p < 1:
        return 1.0
    shares = [
        sum(1 for x in in_order[i * size : (i + 1) * size] if x > threshold) / size
        for i in range(BATCHES)
    ]
    mean = sum(shares) / BATCHES
    var = sum((s - mean) ** 2 for s in shares) / (BATCHES - 1)
    return max(1.0, size * var / (p * (1 - p)))


def _upper_rank(n: int, p: float, spread: float) -> int:
    """The 1-based rank of the interval's upper end among n requests: past n*p by the spread.
    One rule for one window's interval and for pooled windows, so they decide alike."""
    return math.ceil(n * p + spread) + 1


def percentile_interval(
    in_order: Sequence[float], percent: float, z: float = Z95
) -> PercentileInterval | None:
    """The interval for the `percent`-th percentile of the requests `in_order` (completion
    order); None without requests."""
    n = len(in_order)
    if n == 0:
        return None
    p = percent / 100.0
    ordered = sorted(in_order)
    point = ordered[max(1, math.ceil(p * n)) - 1]
    vif = inflation(in_order, p, point)
    quantile = z if n // BATCHES < MIN_BATCH else max(z, T95_BATCHES * z / Z95)
    spread = quantile * math.sqrt(n * p * (1 - p) * vif)
    low_rank = math.floor(n * p - spread)  # 1-based ranks
    high_rank = _upper_rank(n, p, spread)
    return PercentileInterval(
        low=ordered[low_rank - 1] if low_rank >= 1 else None,
        high=ordered[high_rank - 1] if high_rank <= n else None,
        inflation=round(vif, 2),
    )


@dataclass(frozen=True)
class SloTally:
    """A window's requests against the SLO: how many, how many at or under it, and the
    variance inflation of its percentile's interval (batch means at the window's own
    percentile: at the SLO a window wholly under it has no batch above, and reads as
    independent however bursty it is). Unlike intervals, tallies add up across windows, so
    steps at several rates can be judged together (`pooled_pass`)."""

    requests: int
    within: int
    inflation: float


def pooled_pass(tallies: Sequence[SloTally], percent: float) -> bool:
    """Do these windows together put the `percent`-th percentile under the SLO, decidedly?

    Meant for windows at rates r1 <= r2 <= ... of one configuration: latency grows with the
    rate, so each window's share of requests within the SLO is at most the share at r1, and
    their pooled count is a sum of binomials whose mean share is at most r1's. If that count
    clears n*p by the interval's spread (the variances add, each widened by its own
    inflation; Student's t as for one window), the share at r1 is over p with the confidence
    of one window's verdict: r1 passes. The same rank test as `percentile_interval`'s upper
    end lying at or under the SLO."""
    p = percent / 100.0
    n = sum(t.requests for t in tallies)
    if n == 0 or not 0 < p < 1:
        return False
    variance = sum(t.requests * p * (1 - p) * max(1.0, t.inflation) for t in tallies)
    needed = _upper_rank(n, p, T95_BATCHES * math.sqrt(variance))
    return sum(t.within for t in tallies) >= needed


def requests_to_decide(
    sorted_ms: Sequence[float], percent: float, threshold: float, vif: float
) -> float:
    """How many requests a window like this one (the same share of them on each side of
    `threshold`, the same variance inflation) needs before `percentile_interval` lies wholly
    on one side of it; inf when the percentile sits at the threshold itself.

    The interval lies below the threshold once the requests under it outnumber n*p by the
    interval's spread, t * sqrt(n*p*(1-p)*vif), i.e. for n >= (t * sqrt(p*(1-p)*vif) / gap)^2
    with gap the share under it less p (and the same above, for a failure)."""
    n = len(sorted_ms)
    if n == 0:
        return math.inf
    p = percent / 100.0
    below = bisect.bisect_left(sorted_ms, threshold) / n
    at_or_below = bisect.bisect_right(sorted_ms, threshold) / n
    gap = below - p if below > p else p - at_or_below
    if gap <= 0:
        return math.inf
    # a window that long has batches big enough for the widening: Student's t, as above
    return (T95_BATCHES * math.sqrt(p * (1 - p) * max(1.0, vif)) / gap) ** 2

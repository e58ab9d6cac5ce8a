"""How often the capacity's 95% interval holds the true capacity, on a queue whose capacity
is known: the search as shipped (tuner.toml's settings, the real `search`, `judge`, window
figures and the step runner's extension rule), each step's window simulated on an M/D/1 queue
(Poisson arrivals, one FIFO server, a fixed service time; Lindley's recursion gives every
request's latency) or an M/M/1 one (exponential service times: a softer knee), so the true
rate at which p95 crosses the SLO is computed, not measured: from Erlang's formula for the
M/D/1 wait, exactly, and for M/M/1 from its exponential latency. A long simulation will not
do near a steep knee: with the service at 1 ms, the crossing found on 60,000 simulated
requests was 0.9% too high, where p95 is already 52-54 ms, not 40.

No server, no load generator and no machine noise: what it measures is the statistics of the
search alone (verdicts decided on one window's interval, windows measured longer while
undecided, bisection), which every measured capacity inherits. Each search starts as a trial
does: its first step just under an incumbent at a given multiple of the true capacity
(never pruned, as a reference), or climbing from load.start_rps (a study's first trial).
No incumbent sits at 1.1x: with tuner.toml's resolution of 0.1 its probe would fall on the
true capacity itself, where any decided verdict puts an end of the interval a rounding error
past it.

    python bench/interval_coverage.py [--searches 150] [--service-ms 5] [--queue md1|mm1]
                                      [--short]

Writes bench/out/interval_coverage.json and prints one line per start.
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import statistics
import sys
from dataclasses import dataclass
from decimal import Decimal, localcontext
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.tuner.capacity.queue_model import (  # noqa: E402
    WARMUP_CUSTOMERS,
    mm1_sojourns_s,
    sojourns_s,
)
from tuner.capacity.search import SearchOutcome, SearchSettings, search  # noqa: E402
from tuner.capacity.settings import load_profile, search_settings, step_criteria  # noqa: E402
from tuner.capacity.step import StepCriteria, StepResult  # noqa: E402
from tuner.capacity.step_runner import window_extension  # noqa: E402
from tuner.config import load_config  # noqa: E402
from tuner.load import LoadProfile  # noqa: E402
from tuner.load.window import IntervalData, window_figures  # noqa: E402

OUT = ROOT / "bench" / "out" / "interval_coverage.json"
STARTS = ("climb", 0.9, 1.2, 1.5, 3.0)  # from start_rps, or an incumbent this many x the truth
STEP_OVERHEAD_S = 0.3  # per step: the drain (median 0.12 s) and the rest (0.16 s), surface round 2


def md1_sojourn_cdf(t_s: float, rate: float, service_s: float) -> float:
    """P(latency <= t) on an M/D/1 queue: Erlang's formula for the wait W, P(W <= x) =
    (1 - rho) * sum over k <= x/D of (lambda (kD - x))^k / k! * exp(-lambda (kD - x)), at
    x = t - D. Its terms alternate and grow with x/D, so it is summed in 80 digits."""
    with localcontext() as ctx:
        ctx.prec = 80
        x, lam, d = Decimal(t_s - service_s), Decimal(rate), Decimal(service_s)
        if x < 0:
            return 0.0
        total = Decimal(0)
        for k in range(int(x / d) + 1):
            u = lam * (k * d - x)
            power = u**k if k else Decimal(1)  # Decimal refuses 0 ** 0
            total += power / Decimal(math.factorial(k)) * (-u).exp()
        return float((1 - lam * d) * total)


def md1_rate_at_percentile(slo_s: float, service_s: float, percent: float = 95.0) -> float:
    """The arrival rate at which the percentile of latency equals `slo_s` (bisection)."""
    lo, hi = 0.0, 1.0 / service_s
    for _ in range(50):
        mid = (lo + hi) / 2
        if md1_sojourn_cdf(slo_s, mid, service_s) >= percent / 100:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True)
class Queue:
    """A FIFO queue whose capacity at a latency percentile is known exactly."""

    kind: str  # "md1": a fixed service time; "mm1": exponential service times
    service_s: float

    def latencies_s(self, rate: float, n: int, seed: int) -> np.ndarray:
        simulate = sojourns_s if self.kind == "md1" else mm1_sojourns_s
        return simulate(rate, self.service_s, n, seed)

    def capacity(self, slo_s: float, percent: float) -> float:
        """The arrival rate whose latency percentile is `slo_s`: Erlang's formula for M/D/1;
        for M/M/1 the latency is exponential with rate mu - lambda."""
        if self.kind == "md1":
            return md1_rate_at_percentile(slo_s, self.service_s, percent)
        return 1.0 / self.service_s - math.log(100.0 / (100.0 - percent)) / slo_s


@dataclass
class QueueStep:
    """One step on the simulated queue: warm-up customers discarded, then intervals of
    requests in completion order, measured longer by the step runner's own rule
    (`window_extension`)."""

    queue: Queue
    criteria: StepCriteria
    settings: SearchSettings
    profile: LoadProfile
    seed: int
    calls: int = 0

    def __call__(self, rate: float) -> StepResult:
        self.calls += 1
        interval_s = self.profile.interval_s
        per_interval = max(1, round(rate * interval_s))
        most = self.profile.measure_intervals + round(self.settings.step_extra_s / interval_s)
        latencies = self.queue.latencies_s(
            rate, WARMUP_CUSTOMERS + most * per_interval, self.seed + self.calls
        )[WARMUP_CUSTOMERS:]
        intervals = [
            IntervalData(
                index=i,
                requests=per_interval,
                latencies_ms=list(latencies[i * per_interval : (i + 1) * per_interval] * 1000),
            )
            for i in range(most)
        ]
        extend = window_extension(self.criteria, self.profile, self.settings.step_extra_s)
        used = self.profile.measure_intervals
        figures = window_figures(intervals[:used], interval_s)
        while extra := extend(figures):
            used += extra
            figures = window_figures(intervals[:used], interval_s)
        ci = figures.intervals.get(self.criteria.percentile)
        return StepResult(
            target_rps=rate,
            offered_rps=rate,
            completed_rps=figures.rps,
            goodput_rps=figures.rps,
            p50_ms=figures.p50_ms,
            p95_ms=figures.p95_ms,
            p99_ms=figures.p99_ms,
            error_rate=0.0,
            requests=figures.requests,
            duration_s=figures.duration_s,
            latency_ci_ms=ci.as_list() if ci is not None else None,
            within_slo=bisect.bisect_right(figures.latencies_ms, self.criteria.slo_ms),
            latency_inflation=ci.inflation if ci is not None else None,
            elapsed_s=self.profile.warmup_s + figures.duration_s + STEP_OVERHEAD_S,
        )


class SimulatedClock:
    """The search's clock, advanced by each simulated step's seconds (its time budget)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def one_search(start, truth: float, step: QueueStep, start_rps: float) -> SearchOutcome:
    clock = SimulatedClock()

    def timed(rate: float) -> StepResult:
        result = step(rate)
        clock.now += result.elapsed_s
        return result

    if start == "climb":
        return search(timed, step.settings, step.criteria, start_rps=start_rps, clock=clock)
    return search(
        timed,
        step.settings,
        step.criteria,
        start_rps=start_rps,
        incumbent_rps=truth * start,
        may_prune=False,
        clock=clock,
    )


def summarise(outcomes: list[SearchOutcome], truth: float, precision: float) -> dict:
    """Coverage and width of the intervals, error of the estimates, seconds of the searches."""
    with_interval = [o for o in outcomes if o.interval is not None]
    low_above = sum(1 for o in with_interval if o.interval.low > truth)
    high_below = sum(
        1 for o in with_interval if o.interval.high is not None and o.interval.high < truth
    )
    closed = [
        o.interval.half_width
        for o in with_interval
        if o.interval.low > 0 and o.interval.half_width is not None
    ]
    errors = [o.interval.estimate / truth - 1 for o in with_interval]
    n = len(with_interval)
    return {
        "searches": len(outcomes),
        "without_capacity": len(outcomes) - n,
        "coverage": round((n - low_above - high_below) / n, 3) if n else None,
        "low_end_above_truth": low_above,
        "high_end_below_truth": high_below,
        "open_below": sum(1 for o in with_interval if o.interval.low <= 0),
        "open_above": sum(1 for o in with_interval if o.interval.high is None),
        "half_width_median": round(statistics.median(closed), 3) if closed else None,
        "within_precision": sum(1 for w in closed if w <= precision),
        "estimate_error_median": round(statistics.median(errors), 4) if errors else None,
        "estimate_error_rms": round(math.sqrt(statistics.fmean(e * e for e in errors)), 4)
        if errors
        else None,
        "seconds_mean": round(statistics.fmean(o.elapsed_s for o in outcomes), 1),
        "steps_mean": round(statistics.fmean(len(o.points) for o in outcomes), 2),
    }


def run(searches: int, queue: Queue, config_path: Path) -> dict:
    config = load_config(config_path)
    settings = search_settings(config)
    criteria = step_criteria(config)
    profile = load_profile(config)
    truth = queue.capacity(criteria.slo_ms / 1000, criteria.percent)
    results = {}
    for start in STARTS:
        outcomes = []
        for i in range(searches):
            step = QueueStep(
                queue,
                criteria,
                settings,
                profile,
                seed=1_000_000 * (1 + STARTS.index(start)) + 1000 * i,
            )
            outcomes.append(one_search(start, truth, step, config.load.start_rps))
        results[str(start)] = summarise(outcomes, truth, settings.precision or 0.05)
        print(f"start {start!s:>5}: {_line(results[str(start)])}", flush=True)
    return {
        "queue": {
            "kind": queue.kind,
            "service_ms": queue.service_s * 1000,
            "true_capacity_rps": round(truth, 2),
        },
        "settings": {
            "config": str(config_path),
            "precision": settings.precision,
            "max_steps": settings.max_steps,
            "max_trial_s": settings.max_trial_s,
            "step_extra_s": settings.step_extra_s,
        },
        "starts": results,
    }


def _line(s: dict) -> str:
    return (
        f"coverage {s['coverage']:.1%} of {s['searches']} (low end above the truth "
        f"{s['low_end_above_truth']}, high end below {s['high_end_below_truth']}), open below "
        f"{s['open_below']}, half-width median {s['half_width_median']}, within precision "
        f"{s['within_precision']}, estimate error median {s['estimate_error_median']:+.1%} rms "
        f"{s['estimate_error_rms']:.1%}, {s['seconds_mean']} s and {s['steps_mean']} steps a search"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--searches", type=int, default=150, help="per start (default 150)")
    parser.add_argument("--service-ms", type=float, default=5.0, help="the queue's service time")
    parser.add_argument(
        "--queue",
        choices=("md1", "mm1"),
        default="md1",
        help="md1: a fixed service time (default); mm1: exponential service times",
    )
    parser.add_argument("--config", type=Path, default=ROOT / "tuner.toml")
    parser.add_argument("--short", action="store_true", help="10 searches per start")
    args = parser.parse_args()
    searches = 10 if args.short else args.searches
    queue = Queue(args.queue, args.service_ms / 1000)
    figures = run(searches, queue, args.config.resolve())
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

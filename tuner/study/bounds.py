"""Capacities that are lower bounds, told apart from measured ones.

A capacity search that stops on its budget (`max_steps`, `max_trial_s`) or at `max_rps`
before any step crossed the SLO knows only that the configuration serves at least its last
passing rate: its 95% interval is open above (`ci` = [low, None]). Such a figure must never
be averaged with measured ones (a median of ">= 31" and "828" is neither), and every report
that shows it says ">=".
"""

from __future__ import annotations


def is_lower_bound(run: dict) -> bool:
    """A capacity run whose interval is open above: its search never crossed the SLO."""
    ci = run.get("ci")
    return bool(ci) and ci[1] is None


def describe_confirmed(record: dict) -> str:
    """The confirmed figure in words, e.g. "median 800.0 req/s over 3 runs", saying when it
    is a lower bound or when lower bounds were set aside."""
    return f"{'>=' if record.get('lower_bound') else 'median'} {record['median_rps']:.1f} " + (
        f"req/s{runs_text(record, ' over ')}"
    )


def runs_text(record: dict, lead: str = ", median of ") -> str:
    """Which runs the confirmed figure stands on: ", median of 3 runs" for measured runs;
    the bounds set aside, or that every run was a bound, otherwise."""
    bounds = record.get("lower_bounds_rps") or []
    if record.get("lower_bound"):
        return (
            f" (a lower bound: none of its {counted(len(bounds), 'run')} crossed the SLO "
            "before its search stopped)"
        )
    measured = record.get("measured_rps", record["rps"])
    text = f"{lead}{counted(len(measured), 'measured run' if bounds else 'run')}"
    if bounds:
        text += f", {counted(len(bounds), 'lower bound')} set aside (>= {max(bounds):.1f})"
    return text


def counted(n: int, noun: str) -> str:
    """A count in words ("1 run", "3 runs"): a figure says how many it stands on."""
    return f"{n} {noun}{'' if n == 1 else 's'}"

"""`show`: every trial of a study as a table, the winner marked."""

from __future__ import annotations

import optuna

from tuner.capacity.record import ci_text
from tuner.coordination.resume import RETRY_ATTR, fail_reason
from tuner.coordination.worker_name import WORKER_ATTR
from tuner.review.backend_note import summary_tag
from tuner.study.bounds import counted, describe_confirmed, runs_text
from tuner.study.progress import describe_params
from tuner.study.ratios import ratio_between, tie_text
from tuner.study.run_spread import RunSpread, stored_run_spread, widen
from tuner.trial_record import (
    CONFIRMATION_ATTR,
    HOST_LOOP_ATTR,
    HOST_MEMORY_ATTR,
    NO_BATCHING,
    REFERENCE_ATTR,
    TF_SERVING_RECOMMENDED,
    WINNER_ATTR,
    best_feasible,
    is_feasible,
)

COLUMNS = (
    "#",
    "state",
    "params",
    "req/s",
    "p50",
    "p95",
    "p99",
    "err%",
    "batch",
    "feasible",
    "notes",
)


CAPACITY_COLUMNS = (
    "#",
    "state",
    "params",
    "capacity",
    "p50",
    "p95",
    "p99",
    "err%",
    "batch",
    "steps",
    "feasible",
    "notes",
)


def is_capacity_study(study: optuna.Study) -> bool:
    return study.user_attrs.get("load_mode") == "capacity" or any(
        "capacity_curve" in t.user_attrs for t in study.get_trials(deepcopy=False)
    )


def trial_rows(study: optuna.Study) -> list[tuple[str, ...]]:
    winner = (study.user_attrs.get(WINNER_ATTR) or {}).get("trial")
    capacity = is_capacity_study(study)
    confirmations = study.user_attrs.get(CONFIRMATION_ATTR) or {}
    spread = stored_run_spread(study)
    rows = []
    for t in study.get_trials(deepcopy=False):
        a = t.user_attrs
        notes = []
        if t.number == winner:
            notes.append("WINNER")
        confirmation = confirmations.get(str(t.number))
        if confirmation:
            notes.append(
                f"confirmed {describe_confirmed(confirmation)}"
                + ("" if confirmation["feasible"] else " (infeasible)")
            )
        if REFERENCE_ATTR in a:
            notes.append(a[REFERENCE_ATTR])
        reason = fail_reason(t)
        if reason:
            notes.append(reason)
        if a.get(RETRY_ATTR) is not None:
            notes.append(f"retry of #{a[RETRY_ATTR]}")
        if a.get("same_params_as") is not None:
            notes.append(f"same params as #{a['same_params_as']}")
        if a.get("pruned_because"):
            notes.append(f"pruned: {a['pruned_because']}")
        if a.get("generator_saturated"):
            notes.append("saturated")
        if a.get("settled") is False:
            notes.append("unsettled")
        if a.get("non_monotone"):
            notes.append("fails at a lower rate than it passes")
        elif a.get("infeasible_reason"):
            notes.append(a["infeasible_reason"])
        measured = "rps" in a
        row = (
            str(t.number),
            t.state.name,
            describe_params(t),
            f"{a['rps']:.1f}" if measured else "-",
            _f(a.get("p50_ms")),
            _f(a.get("p95_ms")),
            _f(a.get("p99_ms")),
            # a running trial's attrs arrive one by one: `show` during a study reads them so
            f"{100 * a['error_rate']:.2f}" if a.get("error_rate") is not None else "-",
            _f(a.get("mean_batch_size")),
            ("yes" if is_feasible(t) else "no") if measured else "-",
            ", ".join(notes),
        )
        if capacity:
            row = _capacity_row(t, row, spread)
        rows.append(row)
    return rows


def _capacity_row(
    t: optuna.trial.FrozenTrial, row: tuple[str, ...], spread: RunSpread | None
) -> tuple[str, ...]:
    """The closed-loop row with a steps column; a pruned trial's capacity is only known to
    be below the rate it failed at, and it has no feasibility of its own. The interval is the
    search's own, widened by the study's run-to-run spread once the confirmation pass has
    measured one (tuner/study/run_spread.py)."""
    a = t.user_attrs
    cells = list(row)
    curve = a.get("capacity_curve") or []
    if t.state == optuna.trial.TrialState.PRUNED:
        if curve:
            cells[3] = f"<{curve[0]['target_rps']:.1f}"
        cells[-2] = "-"
    elif a.get("capacity_ci_rps") and cells[3] != "-":
        low, high = widen(a.get("capacity_rps", a["rps"]), *a["capacity_ci_rps"], spread)
        shown_low = f"{low:.0f}" if low > 0 else "?"  # no decided pass: open below
        cells[3] += f" [{shown_low}-{'' if high is None else f'{high:.0f}'}]"
    return (*cells[:-2], str(a.get("search_steps", "-")), *cells[-2:])


def format_table(rows: list[tuple[str, ...]], columns: tuple[str, ...] = COLUMNS) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def show(study: optuna.Study) -> str:
    """The table; with a `worker` column (before the notes) when tuners named themselves,
    so a study shared by several tuners says who measured each trial."""
    rows = trial_rows(study)
    if not rows:
        return f"study {study.study_name!r} has no trials yet"
    columns = CAPACITY_COLUMNS if is_capacity_study(study) else COLUMNS
    workers = [t.user_attrs.get(WORKER_ATTR) for t in study.get_trials(deepcopy=False)]
    if any(workers):
        columns = (*columns[:-1], "worker", columns[-1])
        rows = [(*r[:-1], w or "-", r[-1]) for r, w in zip(rows, workers, strict=True)]
    table = format_table(rows, columns)
    notes = [n for n in (interval_note(study), host_speed_note(study)) if n]
    return "\n".join([table, *notes])


def interval_note(study: optuna.Study) -> str | None:
    """What the capacity column's intervals include, once the study knows its run-to-run
    spread (tuner/study/run_spread.py); None before that."""
    spread = stored_run_spread(study)
    if spread is None or not is_capacity_study(study):
        return None
    return (
        f"capacity intervals: each search's 95% interval widened by the study's "
        f"{spread.text()}, +-{spread.half_width:.1%}"
    )


# Trials' loop medians this far apart are a moved machine, not the loop's own scatter (a
# steady run's per-trial medians spread 3.8%, bench/RESULTS.md); capacity moved ~2.5% per 1%.
HOST_DRIFT = 0.10


def host_speed_note(study: optuna.Study) -> str | None:
    """Whether the machine's own speed moved between trials (tuner/capacity/host_speed.py),
    and how much: capacities measured at different speeds can differ by more than their
    intervals, which hold one search's noise only (in one bench run they fell with the loop's
    time, r = -0.83; over two others, with the memory reads', r = -0.51). None while both held
    within HOST_DRIFT."""
    moved = [
        text
        for attr, what in (
            (HOST_LOOP_ATTR, "a fixed loop took"),
            (HOST_MEMORY_ATTR, "random reads in memory took"),
        )
        if (text := _moved(study, attr, what)) is not None
    ]
    if not moved:
        return None
    return (
        f"the machine's speed moved during the study: {'; '.join(moved)}: capacities measured "
        "at different speeds can differ by more than their intervals say, so the "
        "confirmation's interleaved rounds, not single searches, rank the finalists"
    )


def _moved(study: optuna.Study, attr: str, what: str) -> str | None:
    figures = [
        (t.number, ms)
        for t in study.get_trials(deepcopy=False)
        if isinstance(ms := t.user_attrs.get(attr), int | float) and ms > 0
    ]
    if len(figures) < 2:
        return None
    fast = min(figures, key=lambda n_ms: n_ms[1])
    slow = max(figures, key=lambda n_ms: n_ms[1])
    if slow[1] < (1 + HOST_DRIFT) * fast[1]:
        return None
    return (
        f"{what} {_ms(fast[1])} ms of CPU in trial {fast[0]} and {_ms(slow[1])} ms in trial "
        f"{slow[0]} (+{slow[1] / fast[1] - 1:.0%}; each trial's in its attr {attr})"
    )


def _ms(value: float) -> str:
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def _f(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def winner_summary(study: optuna.Study, percentile: str) -> str:
    """One line: the winner (the confirmed one, else the best feasible trial, as `export`
    picks it) against the no-batching reference, in req/s and latency."""
    winner = study.user_attrs.get(WINNER_ATTR)
    if winner:
        trial = study.trials[winner["trial"]]
        rps = winner["median_rps"]
        latency = winner.get(f"median_{percentile}_ms", trial.user_attrs.get(f"{percentile}_ms"))
        how = (
            f"median of {counted(winner.get('runs', 1), 'run')}"
            if winner.get("confirmed")
            else "single run"
        )
        record = (study.user_attrs.get(CONFIRMATION_ATTR) or {}).get(str(winner["trial"]))
        if (
            winner.get("confirmed")
            and record
            and record.get("lower_bounds_rps")
            and not winner.get("lower_bound")
        ):
            # the median stands on the measured runs only: say how many, and the bounds apart
            how = runs_text(record, "median of ")
        if winner.get("lower_bound"):
            how += ", a lower bound: no run crossed the SLO before its search stopped"
    else:
        best = best_feasible(study, 1)
        if not best:
            return (
                "no feasible trial: nothing met the SLO and error-rate limit; relax "
                "objective.slo_ms or objective.max_error_rate, or widen the search space"
            )
        trial = best[0]
        rps = trial.user_attrs["rps"]
        latency = trial.user_attrs.get(f"{percentile}_ms")
        how = "single run, not confirmed"
    capacity = "capacity_rps" in trial.user_attrs
    if capacity:
        ci = "" if winner and winner.get("confirmed") else ci_text(trial.user_attrs)
        line = (
            f"winner: trial {trial.number} ({describe_params(trial)}) capacity {rps:.1f} req/s"
            f"{ci} at {percentile} {_f(latency)} ms ({how})"
        )
    else:
        line = (
            f"winner: trial {trial.number} ({describe_params(trial)}) "
            f"{rps:.1f} req/s, {percentile} {_f(latency)} ms ({how})"
        )
    line += summary_tag(trial) + tie_text(study, winner)
    if trial.user_attrs.get(REFERENCE_ATTR) == NO_BATCHING:
        return line + "; batching did not beat it: keep serving without --enable_batching"
    if capacity:
        versus = versus_references(study, rps, percentile, trial.number)
        return f"{line}; {versus}" if versus else line
    reference = _reference(study, NO_BATCHING)
    if reference is not None:
        base, base_latency, how = reference_figures(
            study, reference, percentile, reference.user_attrs.get(f"{percentile}_ms")
        )
        quoted = ratio_between(study, trial, reference, rps, base)
        ratio = f" = {quoted.text()}" if quoted else ""
        line += (
            f"; no batching (trial {reference.number}): {base:.1f} req/s, "
            f"{percentile} {_f(base_latency)} ms{how}{ratio}"
        )
    return line


REFERENCE_NAMES = {
    NO_BATCHING: "no batching",
    TF_SERVING_RECOMMENDED: "TF Serving's recommended start",
}


def _reference(study: optuna.Study, kind: str) -> optuna.trial.FrozenTrial | None:
    """The measured reference trial of that kind (the latest, when it ran more than once)."""
    measured = [
        t
        for t in study.get_trials(deepcopy=False)
        if t.user_attrs.get(REFERENCE_ATTR) == kind and "rps" in t.user_attrs
    ]
    return measured[-1] if measured else None


def reference_figures(
    study: optuna.Study, ref: optuna.trial.FrozenTrial, percentile: str, latency: float | None
) -> tuple[float, float | None, str]:
    """A reference's req/s and latency, the confirmation pass's medians when it re-measured
    the reference (like for like with a confirmed winner), and how they were obtained."""
    confirmed = (study.user_attrs.get(CONFIRMATION_ATTR) or {}).get(str(ref.number))
    if confirmed and confirmed.get("median_rps"):
        return (
            confirmed["median_rps"],
            confirmed.get(f"median_{percentile}_ms", latency),
            runs_text(confirmed),
        )
    return ref.user_attrs["rps"], latency, ""


def versus_references(
    study: optuna.Study, value: float, percentile: str, winner: int | None = None
) -> str:
    """`value` (a capacity) against both reference points, e.g. (a demo run) "1.59x no
    batching (trial 0: 259.3 req/s at p95 24.8 ms, median of 2 runs), TF Serving's recommended
    start (trial 1) has no capacity within the SLO"."""
    parts = []
    for kind, name in REFERENCE_NAMES.items():
        ref = _reference(study, kind)
        if ref is None:
            continue
        if ref.number == winner:
            parts.append(f"the winner is {name} itself")
            continue
        base, latency, how = reference_figures(
            study, ref, percentile, ref.user_attrs.get("latency_at_capacity_ms")
        )
        if base and ref.user_attrs.get("capacity_rps"):
            quoted = (
                ratio_between(study, study.trials[winner], ref, value, base)
                if (winner is not None)
                else None
            )
            parts.append(
                f"{quoted.text() if quoted else f'{value / base:.2f}x'} {name} (trial "
                f"{ref.number}: {base:.1f} req/s at {percentile} {_f(latency)} ms{how})"
            )
        else:
            parts.append(f"{name} (trial {ref.number}) has no capacity within the SLO")
    return ", ".join(parts)

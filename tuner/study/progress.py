"""One line per finished trial: how far the run is, what was tried, what it measured, and the
best so far."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import optuna

from tuner.capacity.record import ci_text
from tuner.trial_record import REFERENCE_ATTR, best_feasible_value, is_feasible

if TYPE_CHECKING:  # only the type: `show` reads the progress lines' words without the config
    from tuner.config import TunerConfig

_SHORT = {
    "max_batch_size": "max",
    "batch_timeout_micros": "timeout_us",
    "num_batch_threads": "threads",
    "max_enqueued_batches": "queue",
    "allowed_batch_sizes": "allowed",
    "pad_variable_length_inputs": "pad",
    "tensorflow_intra_op_parallelism": "intra",
    "tensorflow_inter_op_parallelism": "inter",
}


def describe_params(trial: optuna.trial.FrozenTrial) -> str:
    if trial.user_attrs.get(REFERENCE_ATTR) == "no_batching":
        return "no batching"
    return " ".join(f"{_SHORT.get(k, k)}={v}" for k, v in trial.params.items()) or "-"


def trial_line(study: optuna.Study, trial: optuna.trial.FrozenTrial, config: TunerConfig) -> str:
    percentile = config.objective.percentile
    a = trial.user_attrs
    reference = f" [{a[REFERENCE_ATTR]}]" if REFERENCE_ATTR in a else ""
    head = f"trial {trial.number:>3}{reference} {describe_params(trial)}"
    if trial.state == optuna.trial.TrialState.FAIL:
        detail = str(a.get("fail_detail", "")).splitlines()
        body = f"FAILED {a.get('fail_reason', 'unknown')}: {detail[0] if detail else ''}"
    elif "capacity_curve" in a:
        body = capacity_body(trial, percentile)
    else:
        flags = []
        if trial.state == optuna.trial.TrialState.PRUNED:
            flags.append(f"pruned: {a.get('pruned_because', '')}")
        if a.get("same_params_as") is not None:
            flags.append(f"same params as #{a['same_params_as']}")
        if a.get("generator_saturated"):
            flags.append("load generator saturated")
        if a.get("settled") is False:
            flags.append("unsettled")
        body = (
            f"{a.get('rps', 0):.1f} req/s {percentile} {_ms(a.get(f'{percentile}_ms'))} "
            f"err {a.get('error_rate', 0):.2%} batch {_num(a.get('mean_batch_size'))} "
            f"{'feasible' if is_feasible(trial) else 'infeasible'}"
            + (f" ({'; '.join(flags)})" if flags else "")
        )
    best = best_feasible_value(study)
    what = "capacity " if "capacity_curve" in a else ""
    tail = f" | best {what}{best:.1f} req/s" if best is not None else " | no feasible trial yet"
    return f"{head} -> {body}{tail}"


def capacity_body(trial: optuna.trial.FrozenTrial, percentile: str) -> str:
    """ "capacity 812.0 req/s at p95 21.3 ms, batch 6.2 (5 steps, 31 s) feasible", or why
    there is none: pruned after its probe, or no tested rate passed."""
    a = trial.user_attrs
    steps = f"{a.get('search_steps', 0)} step(s), {a.get('search_s', 0):.0f} s"
    if trial.state == optuna.trial.TrialState.PRUNED:
        return f"PRUNED ({steps}): {a.get('pruned_because', '')}"
    if not a.get("capacity_rps"):
        return f"no capacity ({steps}): {a.get('infeasible_reason') or ''} infeasible"
    notes = []
    if a.get("search_stop_reason") in ("max_steps_reached", "max_trial_s_reached"):
        notes.append(str(a.get("search_stop_detail")))
    if a.get("same_params_as") is not None:
        notes.append(f"same params as #{a['same_params_as']}")
    return (
        f"capacity {a['capacity_rps']:.1f} req/s{ci_text(a)} at {percentile} "
        f"{_ms(a.get('latency_at_capacity_ms'))}, err {a.get('error_rate', 0):.2%}, batch "
        f"{_num(a.get('mean_batch_size'))} ({steps}) "
        f"{'feasible' if is_feasible(trial) else 'infeasible'}"
        + (f" ({'; '.join(notes)})" if notes else "")
    )


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


class RunProgress:
    """This run's "[k/N, ~T left]": the estimate is the mean duration of its trials so far,
    server restarts and warm-up included, times the runs left: the trials, then the
    confirmation pass's `after_runs` searches, each about as long as a trial (without them, the
    last trial's "~43 s left" was followed by minutes of confirmation). With other tuners on
    the study, `done` is the study's trials finished since this run started (theirs included),
    so the rate is the whole study's; the confirmation is counted by each of them, though only
    the one that claims it runs it."""

    def __init__(
        self, total: int, after_runs: int = 0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.total = total
        self.after_runs = after_runs
        self.done = 0
        self._clock = clock
        self._started = clock()

    def after_trial(self, done: int | None = None) -> str:
        self.done = self.done + 1 if done is None else max(done, 1)
        trials_left = max(0, self.total - self.done)
        runs_left = trials_left + self.after_runs
        if runs_left <= 0:
            return f"[{self.done}/{self.total}]"
        left = _duration((self._clock() - self._started) / self.done * runs_left)
        if not self.after_runs:
            return f"[{self.done}/{self.total}, ~{left} left]"
        if not trials_left:
            return f"[{self.done}/{self.total}, ~{left} of confirmation left]"
        return f"[{self.done}/{self.total}, ~{left} left, confirmation included]"


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"

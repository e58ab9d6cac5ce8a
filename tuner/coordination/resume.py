"""Resuming a study: which trials count toward `n_trials`, and which run again.

Three kinds of trial were cut short rather than measured; none counts, and each runs again,
once (its retry carries `retry_of`, and is itself re-queued only if it too is cut short):

- *interrupted*: Ctrl-C or SIGTERM; the objective recorded `fail_reason = "interrupted"`.
- *abandoned*: the tuner died without a word (SIGKILL, the OOM killer, a lost machine). Its
  trial stays RUNNING until its heartbeat is `study.stale_after_s` old; then Optuna fails it.
  A finished trial takes no more attributes, so an abandoned trial is the one FAIL trial
  without a `fail_reason` (the objective records one for every failure it sees).
- a *fault of the bench*: the trial failed for a reason that says nothing about its
  configuration (`BENCH_FAULTS`), such as a port another process holds. Counting it would let
  a broken bench fail the whole study in seconds; a tuner that meets several in a row stops
  instead (tuner/coordination/shared_trials.py).

The heartbeat, not "RUNNING at start-up", is what decides: with several tuner hosts on one
database, another host's trial keeps beating and is never taken for abandoned.
"""

from __future__ import annotations

import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.trial_record import REFERENCE_ATTR

RETRY_ATTR = "retry_of"
INTERRUPTED = "interrupted"
ABANDONED = "abandoned"

# The one list of the fail reasons that are faults of the bench, not of the configuration
# measured: such a trial is re-queued and does not count.
BENCH_FAULTS: frozenset[str] = frozenset(
    {
        # A port the model server needs is held by another process. Even a configured port
        # (the only kind that still fails a trial: the tuner moves off ports it chose itself)
        # says nothing about the batching: the user frees it, and the trial runs again.
        "port_conflict",
        # The model server does not start even without the trial's batching file and flags
        # (tuner/measure/server_start.py); one that starts only without them is the configuration's
        # fault and fails `server_exited` or `never_ready`, which count.
        "server_start_failed",
        # The Docker engine stopped answering, or the image can be neither found nor pulled.
        "backend_unavailable",
        "image_unavailable",
        # The tuner's own service or the load generator died while a step was measured
        # (docs/concepts/faults.md). A model server that exits is not one: a configuration can
        # crash it (e.g. out of memory), so `server_exited` counts as measured.
        "service_failed",
        "load_generator_failed",
    }
)


def heartbeat_settings(stale_after_s: int) -> dict[str, object]:
    """RDBStorage arguments: beat four times per grace period, and re-queue what goes stale
    while a study runs (another host's trial), not only at start-up."""
    return {
        "heartbeat_interval": max(1, stale_after_s // 4),
        "grace_period": stale_after_s,
        "heartbeat_stale_trial_callback": lambda study, trial: requeue_cut_short(study),
    }


def fail_reason(trial: FrozenTrial) -> str | None:
    """The failure's slug; `abandoned` for a trial failed by the heartbeat check."""
    if trial.state != TrialState.FAIL:
        return None
    return trial.user_attrs.get("fail_reason") or ABANDONED


def is_bench_fault(trial: FrozenTrial) -> bool:
    return fail_reason(trial) in BENCH_FAULTS


def was_cut_short(trial: FrozenTrial) -> bool:
    """Interrupted, abandoned, or failed by the bench: not measured, so measured again."""
    return fail_reason(trial) in (INTERRUPTED, ABANDONED) or is_bench_fault(trial)


def counted_trials(study: optuna.Study) -> int:
    """Trials that count toward n_trials: every finished one except those cut short, which a
    resumed study measures again."""
    finished = study.get_trials(
        deepcopy=False, states=[TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL]
    )
    return sum(1 for t in finished if not was_cut_short(t))


def fail_stale_trials(study: optuna.Study) -> list[FrozenTrial]:
    """Fail (and so, through the storage's callback, re-queue) the trials whose tuner stopped
    beating, and return them. Optuna does this before each trial; a resume does it first so
    it can say so before it counts what is left."""
    running = {t.number for t in study.get_trials(deepcopy=False, states=[TrialState.RUNNING])}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)
    failed = study.get_trials(deepcopy=False, states=[TrialState.FAIL])
    return [t for t in failed if t.number in running]


def requeue_cut_short(study: optuna.Study) -> list[FrozenTrial]:
    """Enqueue again every trial cut short and not yet re-queued, with its parameters and
    reference name, so the study measures it (the no-batching reference included).
    Returns the trials re-queued."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.user_attrs.get(RETRY_ATTR) for t in trials}
    requeued = []
    for trial in trials:
        if not was_cut_short(trial) or trial.number in retried:
            continue
        attrs: dict[str, object] = {RETRY_ATTR: trial.number}
        if REFERENCE_ATTR in trial.user_attrs:
            attrs[REFERENCE_ATTR] = trial.user_attrs[REFERENCE_ATTR]
        study.enqueue_trial(trial.params, user_attrs=attrs, skip_if_exists=False)
        requeued.append(trial)
    return requeued

"""Trials of one study shared by every tuner that runs it, with no coordinator of our own.

Optuna's RDB storage numbers trials uniquely and hands each queued trial to one tuner. What
it does not do is keep `n_trials` a total across tuners (`study.optimize(n_trials=k)` counts
only its own), nor re-queue an abandoned trial once, nor run the confirmation pass once. So
each tuner claims its trials one at a time with the study lock held
(tuner/coordination/study_lock.py):

- it fails what stopped beating and re-queues what was cut short (once: the lock keeps two
  tuners from queueing the same retry);
- it counts the trials taken, those finished that count plus those RUNNING anywhere, and
  starts one more only while that is below `n_trials`;
- the lock is released at the objective's first line, once the new trial is RUNNING in
  storage and so counted by every other tuner.

When the count is reached while other tuners' trials still run, a tuner waits for them: one
of them may die, and its trial then goes stale, fails `abandoned` and runs again here.

A trial failed by the bench (tuner/coordination/resume.py's BENCH_FAULTS) does not count and runs
again, so a bench that fails every trial would spin; after `max_bench_faults_in_a_row` such trials
in a row the tuner stops, in one sentence, and leaves them queued for the next run.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import optuna
from optuna.trial import FrozenTrial, TrialState

from tuner.coordination.resume import (
    counted_trials,
    fail_reason,
    fail_stale_trials,
    is_bench_fault,
    requeue_cut_short,
)
from tuner.coordination.study_lock import StudyLock
from tuner.errors import TunerError

CONFIRMING_ATTR = "confirming_worker"
CONFIRMED_AT_ATTR = "confirmed_at_trials"  # counted trials the last confirmation pass saw


def running_trials(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=[TrialState.RUNNING]))


def requeue(study: optuna.Study) -> list[FrozenTrial]:
    """Fail the stale trials and queue again everything cut short; hold the study lock."""
    abandoned = fail_stale_trials(study)
    return list({t.number: t for t in [*abandoned, *requeue_cut_short(study)]}.values())


@dataclass
class SharedTrials:
    """Runs this tuner's share of a study's `n_trials`."""

    study: optuna.Study
    lock: StudyLock
    n_trials: int
    poll_s: float = 1.0
    # the sampler for the trial about to be claimed, given how many trials the study has
    sampler_for: Callable[[int], optuna.samplers.BaseSampler] | None = None
    on_requeued: Callable[[FrozenTrial], None] = lambda trial: None
    on_wait: Callable[[int], None] = lambda running: None
    # stop after this many trials in a row failed by the bench (None: never)
    max_bench_faults_in_a_row: int | None = None

    def run(
        self,
        objective: Callable[[optuna.Trial], float],
        *,
        timeout_s: float | None = None,
        catch: tuple[type[Exception], ...] = (),
        callbacks: Sequence[Callable[[optuna.Study, FrozenTrial], None]] = (),
    ) -> int:
        """Claim and run trials until the study has `n_trials` that count and none running
        (or `timeout_s` passed); returns how many this tuner ran."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        ran = 0
        waiting = False
        faults: list[FrozenTrial] = []  # this tuner's last trials, while the bench failed them

        def note(study: optuna.Study, trial: FrozenTrial) -> None:
            if is_bench_fault(trial):
                faults.append(trial)
            else:
                faults.clear()

        while deadline is None or time.monotonic() < deadline:
            with self.lock:
                for trial in requeue(self.study):
                    self.on_requeued(trial)
                running = running_trials(self.study)
                if counted_trials(self.study) + running < self.n_trials:
                    if self.sampler_for is not None:
                        number = len(self.study.get_trials(deepcopy=False))
                        self.study.sampler = self.sampler_for(number)
                    self.study.optimize(
                        self._released_first(objective),
                        n_trials=1,
                        catch=catch,
                        callbacks=[note, *callbacks],
                    )
                    ran += 1
                    waiting = False
                    self._check_bench(faults)
                    continue
            if running == 0:
                break
            if not waiting:
                self.on_wait(running)
                waiting = True
            time.sleep(self.poll_s)
        return ran

    def _check_bench(self, faults: list[FrozenTrial]) -> None:
        limit = self.max_bench_faults_in_a_row
        if limit is None or len(faults) < limit:
            return
        last = faults[-1]
        detail = str(last.user_attrs.get("fail_detail") or "").splitlines()
        numbers = ", ".join(str(t.number) for t in faults)
        which = (
            f"trial {numbers} failed for a reason that is the bench's, not its configuration's"
            if len(faults) == 1
            else f"{len(faults)} trials in a row ({numbers}) failed for a reason that is the "
            "bench's, not their configuration's"
        )
        raise TunerError(
            f"{which} ({fail_reason(last)}: {detail[0] if detail else 'no detail'}), so this "
            "tuner stops rather than fail the rest; fix that and run the same command: the "
            "failed trials run again and count only then"
        )

    def _released_first(
        self, objective: Callable[[optuna.Trial], float]
    ) -> Callable[[optuna.Trial], float]:
        def claimed(trial: optuna.Trial) -> float:
            self.lock.release()  # the trial is RUNNING in storage: every tuner counts it now
            return objective(trial)

        return claimed


@contextlib.contextmanager
def confirmation_claim(url: str, study: optuna.Study, worker: str) -> Iterator[str | None]:
    """Yields None when this tuner is the one to run the confirmation pass, else the sentence
    saying why not (another tuner runs it, or already ran it on these trials, or trials still
    run). The claim is a lock of its own, held for the whole pass, so a confirming tuner that
    dies leaves the pass to the next run rather than marked done."""
    lock = StudyLock(url, f"{study.study_name}\x00confirmation")
    try:
        if not lock.try_acquire():
            who = study.user_attrs.get(CONFIRMING_ATTR, "another tuner")
            yield f"the confirmation pass is run by {who}"
            return
        counted = counted_trials(study)
        if study.user_attrs.get(CONFIRMED_AT_ATTR) == counted:
            who = study.user_attrs.get(CONFIRMING_ATTR, "another tuner")
            yield f"the confirmation pass of these {counted} trials was run by {who}"
            return
        running = running_trials(study)
        if running:
            yield f"{running} trial(s) still run on other tuners: the last to finish confirms"
            return
        study.set_user_attr(CONFIRMING_ATTR, worker)
        yield None
        study.set_user_attr(CONFIRMED_AT_ATTR, counted)
    finally:
        lock.close()

"""Injecting a fault into a running study at a chosen moment of a step, and checking what it
left: the tests of tests/tuner/test_faults.py and bench/faults.py share these.

The moment is read from the trial's own interval stream (`<workdir>/trial-NNNN/load/
intervals.jsonl`, one line per interval of each step as Locust measures it), so "after the
first measured interval of step 0 of trial 1" is a point inside that step's window, whatever
the machine's speed. The fault is done to the real process (found by its command line among
the tuner's children), never through a flag of the product.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import optuna
import psutil
from optuna.trial import TrialState

from tests.support.processes import live_command_lines
from tests.support.studies import stored_trials
from tuner.capacity.ramp import FRACTIONS
from tuner.config import TunerConfig
from tuner.storage import SampleStore
from tuner.study.run import optimize

# a trial's generator steps: the ramp's fractions, its hold at the rate, a drain, the first
# measured step
FIRST_MEASURED_STEP = len(FRACTIONS) + 2

# Which child of the tuner each part is, by its command line.
PARTS = {
    "model_server": lambda cmd: "-m model_server" in cmd,
    "service": lambda cmd: "-m service" in cmd,
    "locust": lambda cmd: "-m locust" in cmd,
}


def study_workdir(config: TunerConfig) -> Path:
    return config.path(config.study.workdir) / config.study.name


def _interval_lines(config: TunerConfig, trial: int) -> list[dict]:
    path = study_workdir(config) / f"trial-{trial:04d}" / "load" / "intervals.jsonl"
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = []
    for line in text.splitlines():
        with contextlib.suppress(ValueError):  # a line being written
            lines.append(json.loads(line))
    return lines


def step_progress(config: TunerConfig, trial: int, step: int) -> tuple[int, bool]:
    """How many intervals of `step` the trial's Locust has written so far, and whether it has
    moved past `step` (a drain or a later step written: a step can end before its window does,
    on the in-flight ceiling or an early verdict); both from one read of the stream."""
    lines = _interval_lines(config, trial)
    seen = sum(d.get("step") == step and "index" in d for d in lines)
    over = any(isinstance(d.get("step"), int) and d["step"] > step for d in lines)
    return seen, over


def intervals_seen(config: TunerConfig, trial: int, step: int) -> int:
    """How many intervals of `step` the trial's Locust has written so far."""
    return step_progress(config, trial, step)[0]


def part_of(tuner_pid: int, part: str) -> psutil.Process | None:
    """The running `part` among the tuner's descendants (the outermost one: Locust's master,
    not its workers)."""
    wanted = PARTS[part]
    try:
        children = psutil.Process(tuner_pid).children(recursive=True)
    except psutil.Error:
        return None
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE and wanted(" ".join(child.cmdline())):
                return child
    return None


class Fault(threading.Thread):
    """Runs `action()` once trial `trial`'s step `step` has written `after` intervals (its
    warm-up is the first `warmup` of them); `done` is set after it ran, `result` is what it
    returned, `error` what it raised. The generator's first steps of a trial are the
    unmeasured ramp after the restart (tuner/capacity/ramp.py), so FIRST_MEASURED_STEP is the
    first measured step."""

    def __init__(
        self,
        config: TunerConfig,
        action: Callable[[], object],
        *,
        trial: int,
        step: int = FIRST_MEASURED_STEP,
        after: int = 1,
        timeout_s: float = 400.0,
    ) -> None:
        super().__init__(daemon=True)
        self.config = config
        self.action = action
        self.trial, self.step, self.after = trial, step, after
        self.timeout_s = timeout_s
        self.done = threading.Event()
        self.cancelled = threading.Event()
        self.result: object = None
        self.error: BaseException | None = None
        self.at: float | None = None

    def run(self) -> None:
        deadline = time.monotonic() + self.timeout_s
        while intervals_seen(self.config, self.trial, self.step) < self.after:
            if self.cancelled.is_set() or time.monotonic() > deadline:
                return
            time.sleep(0.05)
        self.at = time.monotonic()
        try:
            self.result = self.action()
        except BaseException as exc:  # reported by the test, which cannot see this thread's
            self.error = exc
        self.done.set()

    def cancel(self) -> None:
        self.cancelled.set()


def signal_part(part: str, sig: signal.Signals, tuner_pid: int | None = None) -> Callable:
    """An action: send `sig` to the tuner's `part`; returns (pid, command line)."""

    def act() -> tuple[int, str]:
        process = part_of(tuner_pid or os.getpid(), part)
        if process is None:
            raise AssertionError(f"no {part} process to signal")
        cmdline = " ".join(process.cmdline())
        process.send_signal(sig)
        return process.pid, cmdline

    return act


def new_children(before: set[int]) -> list[psutil.Process]:
    return [c for c in psutil.Process().children(recursive=True) if c.pid not in before]


def leftovers(before: set[int], wait_s: float = 10.0) -> list[str]:
    """Command lines of processes started since `before` (children of this process) still
    running after `wait_s`: what a fault left behind."""
    children = new_children(before)
    _, alive = psutil.wait_procs(children, timeout=wait_s)
    return live_command_lines(alive)


def trials(config: TunerConfig) -> list[optuna.trial.FrozenTrial]:
    return stored_trials(config.study.storage, config.study.name)[0]


def check_records(config: TunerConfig) -> list[optuna.trial.FrozenTrial]:
    """No trial left RUNNING, and the samples/steps tables match the trials: every row names
    a trial of the study, and a finished capacity trial has exactly its curve's steps."""
    stored = trials(config)
    states = [(t.number, t.state.name, t.user_attrs.get("fail_reason")) for t in stored]
    assert not [t for t in stored if t.state == TrialState.RUNNING], states
    numbers = {t.number for t in stored}
    with SampleStore(config.study.storage) as store:
        samples = store.read(config.study.name)
        steps = store.read_steps(config.study.name, phase="trial")
    assert {s.trial_number for s in samples} <= numbers
    assert {s.trial_number for s in steps} <= numbers
    for trial in stored:
        curve = trial.user_attrs.get("capacity_curve")
        if trial.state in (TrialState.COMPLETE, TrialState.PRUNED) and curve is not None:
            rows = sorted(s.step for s in steps if s.trial_number == trial.number)
            assert rows == [p["step"] for p in curve], (trial.number, rows, curve)
            stepped = {
                s.step for s in samples if s.trial_number == trial.number and s.phase == "trial"
            }
            assert stepped == set(rows), (trial.number, stepped, rows)
    return stored


def finished(stored: list[optuna.trial.FrozenTrial]) -> list[optuna.trial.FrozenTrial]:
    return [t for t in stored if t.state in (TrialState.COMPLETE, TrialState.PRUNED)]


# Tiny steps: what the fault tests check is what happens to a trial, never its figures. The
# first measured step is where faults land; one more step, never lengthened, ends a trial.
SHORT_STEPS = {
    "mode": "capacity",
    "start_rps": 40.0,
    "step_warmup_s": 1.0,
    "step_measure_s": 2.0,
    "max_steps": 2,
    "step_extra_s": 0.0,
    "resolution": 0.5,
    "low_check_fraction": 0.0,
    "max_in_flight": 128,
}


def fault_config(tmp_path: Path, model: Path, n_trials: int, **sections) -> TunerConfig:
    """A capacity study on the embedded server with SHORT_STEPS, random sampling, no
    confirmation pass."""
    from tests.tuner.test_end_to_end import make_config

    sections.setdefault("load", {}).update(SHORT_STEPS)
    sections.setdefault("confirm", {}).update(top_k=0)
    sections.setdefault("objective", {}).update(slo_ms=250.0)
    sections.setdefault("study", {}).update(n_trials=n_trials, sampler="random")
    return make_config(tmp_path, model, **sections)


def run_with(config: TunerConfig, *faults: Fault) -> tuple[list[str], set[int]]:
    """optimize() with `faults` armed; returns what it said and the processes before it.
    Every fault must have run, without an error of its own."""
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    said: list[str] = []
    for fault in faults:
        fault.start()
    try:
        optimize(config, say=said.append)
    finally:
        for fault in faults:
            fault.cancel()
            fault.join(timeout=10)
    for fault in faults:
        assert fault.done.is_set() and fault.error is None, (fault.trial, fault.error, said)
    return said, before


def by_reason(stored: list[optuna.trial.FrozenTrial], reason: str) -> list:
    return [t for t in stored if t.user_attrs.get("fail_reason") == reason]


def lock_sqlite(db: Path, seconds: float = 4.0) -> None:
    """Hold the SQLite file's write lock, as another writer would (4 s by default: across the
    step's end, when its figures are written)."""
    other = sqlite3.connect(db, timeout=30)
    try:
        other.execute("BEGIN EXCLUSIVE")
        time.sleep(seconds)
    finally:
        other.rollback()
        other.close()


class LogLines(logging.Handler):
    """Log lines over a whole study run by a module's fixture (caplog is one test's)."""

    def __init__(self, level: int = logging.WARNING) -> None:
        super().__init__(level)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())

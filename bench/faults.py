"""Faults mid-study: a capacity study on the demo model with a part of the bench killed,
stopped or locked every few trials, at a random moment of a step, and what came of it.

Every `--every` trials one fault from the list below is injected into that trial's first
step, at a random moment of its window (tests/support/faults.py reads the moment from the
trial's own interval stream; the fault is done to the real process, never by a flag):

    server_kill   the model server SIGKILLed         -> the trial fails server_exited
    server_stop   the model server SIGSTOPped (hung) -> the trial fails server_unresponsive
    service_kill  the tuner's service SIGKILLed      -> service_failed, re-run once
    locust_kill   Locust SIGKILLed                   -> load_generator_failed, re-run once
    db_lock       the SQLite file locked 4 s by another writer -> nothing: waited for

Reported: trials finished, faults injected, faults that ended their trial with the right
reason (or, for db_lock, left it finished), trials lost (goal 0: n_trials must be counted,
none RUNNING, the samples/steps tables consistent), processes of ours left (goal 0).

    python bench/faults.py [--trials 12] [--every 3] [--seed 0] [--short]

`--short` runs 4 trials with 2 faults (a few minutes) to check the benchmark works. Writes
bench/out/faults_bench.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402
import psutil  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

from tests.support.faults import (  # noqa: E402
    FIRST_MEASURED_STEP,
    Fault,
    check_records,
    leftovers,
    lock_sqlite,
    signal_part,
    step_progress,
)
from tuner.config import load_config  # noqa: E402
from tuner.coordination.resume import RETRY_ATTR, counted_trials  # noqa: E402
from tuner.study.run import load_existing_study, optimize  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)  # failed trials: our lines, no tracebacks
MODEL = REPO / "models" / "sentiment"
OUT = REPO / "bench" / "out" / "faults_bench.json"
EXPECTED = {
    "server_kill": "server_exited",
    "server_stop": "server_unresponsive",
    "service_kill": "service_failed",
    "locust_kill": "load_generator_failed",
    "db_lock": None,  # waited for: the trial finishes
}
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
WINDOW_INTERVALS = 3  # 1 s warm-up + 2 s window, in 1 s intervals


def config_for(workdir: Path, trials: int):
    config = load_config(
        None,
        {
            "study": {
                "name": "faults",
                "storage": f"sqlite:///{workdir / 'tuning.db'}",
                "n_trials": trials,
                "sampler": "random",
            },
            "server": {"backend": "embedded", "model_base_path": str(MODEL)},
            "search": {"space": "quick"},
            "load": {
                "mode": "capacity",
                "start_rps": 40.0,
                "step_warmup_s": 1.0,
                "step_measure_s": 2.0,
                "max_steps": 3,
                "step_extra_s": 0.0,  # the window is WINDOW_INTERVALS long, never lengthened
                "resolution": 0.5,
                "low_check_fraction": 0.0,
                "max_in_flight": 128,
            },
            "objective": {"slo_ms": 250.0},
            "confirm": {"top_k": 0},
        },
    )
    config.base_dir = workdir
    return config


def action(kind: str, config, rng: random.Random, trial: int):
    """The fault itself, with a random delay inside the interval it starts in. Returns what
    the fault returned, how many intervals of the step were written when it struck, and
    whether the step was over by then: a delay drawn in the window's last interval can strike
    after the window closed, and a step can end early."""
    delay = rng.uniform(0.0, 0.8)
    db = config.base_dir / "tuning.db"
    signals = {
        "server_kill": ("model_server", signal.SIGKILL),
        "server_stop": ("model_server", signal.SIGSTOP),
        "service_kill": ("service", signal.SIGKILL),
        "locust_kill": ("locust", signal.SIGKILL),
    }

    def act():
        time.sleep(delay)
        seen, over = step_progress(config, trial, FIRST_MEASURED_STEP)
        if kind == "db_lock":
            return lock_sqlite(db), seen, over
        return signal_part(*signals[kind])(), seen, over

    return act


def run(trials: int, every: int, seed: int, faults: int | None) -> dict:
    rng = random.Random(seed)
    kinds = list(EXPECTED)
    with tempfile.TemporaryDirectory(prefix="faults-bench-") as tmp:
        config = config_for(Path(tmp), trials)
        # Trial numbers count re-runs too; a fault every `every` of them, from trial 1 on.
        plan = []
        for number in range(1, trials + 4, every):
            if faults is not None and len(plan) >= faults:
                break
            plan.append((number, rng.choice(kinds), rng.randint(1, WINDOW_INTERVALS - 1)))
        armed = [
            (
                number,
                kind,
                Fault(
                    config,
                    action(kind, config, rng, number),
                    trial=number,
                    after=after,
                    timeout_s=3600,
                ),
            )
            for number, kind, after in plan
        ]
        before = {c.pid for c in psutil.Process().children(recursive=True)}
        for *_, fault in armed:
            fault.start()
        started = time.monotonic()
        error = None
        try:
            optimize(config, say=lambda line: print(line, flush=True))
        except Exception as exc:  # reported, not raised: the benchmark says what happened
            error = f"{type(exc).__name__}: {exc}"
        wall = time.monotonic() - started
        for *_, fault in armed:
            fault.cancel()
            fault.join(timeout=10)
            signalled = fault.result[0] if fault.result else None
            if signalled and "model_server" in str(signalled[1]):
                with contextlib.suppress(psutil.Error):
                    psutil.Process(signalled[0]).resume()  # never leave a stopped process
        left = leftovers(before)
        consistent = True
        try:
            stored = check_records(config)
        except AssertionError as exc:
            consistent, stored = False, load_existing_study(config).trials
            error = error or f"records inconsistent: {exc}"
        by_number = {t.number: t for t in stored}
        injected = []
        for number, kind, fault in armed:
            if not fault.done.is_set():
                continue
            trial = by_number.get(number)
            reason = trial.user_attrs.get("fail_reason") if trial else None
            state = trial.state.name if trial else None
            expected = EXPECTED[kind]
            seen, over = fault.result[1:] if fault.result else (None, False)
            # Struck once the step was over (its window written, or the step ended early):
            # nothing left to cut short in it. The trial finishes on what it measured, or its
            # next step meets the dead part.
            after_window = over or (seen is not None and seen >= WINDOW_INTERVALS)
            right = reason == expected if expected else state in ("COMPLETE", "PRUNED")
            if after_window and expected:
                right = right or state in ("COMPLETE", "PRUNED")
            injected.append(
                {
                    "trial": number,
                    "fault": kind,
                    "state": state,
                    "fail_reason": reason,
                    "expected": expected,
                    "right": right,
                    "intervals_when_struck": seen,
                    "after_window": after_window,
                    "error": repr(fault.error) if fault.error else None,
                }
            )
        study = load_existing_study(config)
        counted = counted_trials(study)
        running = sum(t.state == TrialState.RUNNING for t in stored)
        return {
            "n_trials": trials,
            "wall_s": round(wall, 1),
            "error": error,
            "trials_stored": len(stored),
            "trials_finished": sum(
                t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in stored
            ),
            "trials_failed": {
                reason: sum(t.user_attrs.get("fail_reason") == reason for t in stored)
                for reason in {t.user_attrs.get("fail_reason") for t in stored} - {None}
            },
            "reruns": sum(RETRY_ATTR in t.user_attrs for t in stored),
            "faults_injected": len(injected),
            "faults_right_reason": sum(f["right"] for f in injected),
            "trials_lost": max(trials - counted, 0) + running + (0 if consistent else 1),
            "processes_left": len(left),
            "processes_left_cmdlines": left,
            "faults": injected,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--every", type=int, default=3, help="a fault every this many trials")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--short", action="store_true", help="4 trials, 2 faults")
    args = parser.parse_args()
    trials, every, faults = (4, 2, 2) if args.short else (args.trials, args.every, None)
    result = run(trials, every, args.seed, faults)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print()
    for fault in result["faults"]:
        mark = "ok" if fault["right"] else "WRONG"
        print(
            f"trial {fault['trial']:>2} {fault['fault']:<13} -> {fault['state']} "
            f"{fault['fail_reason'] or ''} (expected {fault['expected'] or 'finished'}"
            f"{', or finished: struck after its step' if fault['after_window'] else ''}) {mark}"
        )
    print(
        f"\n{result['trials_finished']} trials finished of {result['trials_stored']} stored "
        f"(n_trials {trials}, {result['reruns']} re-runs) in {result['wall_s']} s; faults "
        f"{result['faults_right_reason']}/{result['faults_injected']} with the right outcome; "
        f"trials lost {result['trials_lost']} (goal 0); processes left "
        f"{result['processes_left']} (goal 0)"
        + (f"\nerror: {result['error']}" if result["error"] else "")
    )
    print(f"wrote {OUT.relative_to(REPO)}")


if __name__ == "__main__":
    main()

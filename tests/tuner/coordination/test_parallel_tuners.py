"""Three real tuners (`python -m tuner optimize` processes) sharing one study on a real
PostgreSQL server: each with its own model server, service and Locust, as on three hosts.

Trials are tiny (closed loop, 1 s warm-up, 2 s window) and few; what is checked is the sharing:
the study's total, the references once, unique trial numbers, a worker on every samples row,
`show` during the run, and a SIGKILLed tuner's trial measured again by a survivor.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import optuna
import psutil
import pytest
from optuna.trial import TrialState

from tests.support.processes import any_running
from tests.support.studies import stored_trials
from tuner.coordination.resume import ABANDONED, BENCH_FAULTS, RETRY_ATTR, fail_reason
from tuner.servers.study_ports import PORTS_ATTR
from tuner.storage import SampleStore
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, TF_SERVING_RECOMMENDED

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[3]
WORKERS = ("tuner-a", "tuner-b", "tuner-c")


def write_config(
    tmp_path: Path,
    url: str,
    model: Path,
    n_trials: int,
    stale_after_s: int,
    name: str = "tuner.toml",
    study: str = "",
    top_k: int = 1,
) -> None:
    (tmp_path / name).write_text(
        f'[study]\nname = "shared"\nstorage = "{url}"\nn_trials = {n_trials}\n'
        f'sampler = "random"\nstale_after_s = {stale_after_s}\n{study}'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{model}"\n'
        '[search]\nspace = "quick"\n'
        '[load]\nmode = "closed"\nusers = 4\nspawn_rate = 4.0\nwarmup_s = 1.0\nmeasure_s = 2.0\n'
        "[objective]\nslo_ms = 1000.0\n"
        f"[confirm]\ntop_k = {top_k}\nrepeats = 1\n"
    )


def start_tuners(
    tmp_path: Path, tmpdir: Path, configs: list[str] | None = None
) -> list[subprocess.Popen]:
    """One tuner per worker name, on `configs` (one each) or all on tuner.toml. `tmpdir`: the
    tuners' TMPDIR (a SIGKILLed one cannot remove its browser's profile)."""
    return [
        subprocess.Popen(
            [sys.executable, "-m", "tuner", "optimize", "--worker", name, "--config", config],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(tmpdir)},
        )
        for name, config in zip(WORKERS, configs or ["tuner.toml"] * len(WORKERS), strict=True)
    ]


def cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )


def finish(tuners: list[subprocess.Popen], timeout_s: float = 400) -> list[str]:
    outputs = []
    for proc in tuners:
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            for p in tuners:
                p.kill()
            pytest.fail("a tuner did not finish")
        outputs.append(out)
    return outputs


def wait_for(condition, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the tuners never got there")
        time.sleep(0.3)


def trials_of(url: str) -> list[optuna.trial.FrozenTrial]:
    try:
        return stored_trials(url, "shared")[0]
    except KeyError:
        return []


def check_the_study(url: str, n_trials: int, outputs: list[str]) -> list[optuna.trial.FrozenTrial]:
    trials = trials_of(url)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    states = [(t.number, t.state.name, t.user_attrs.get("worker"), fail_reason(t)) for t in trials]
    assert len(complete) == n_trials, (states, [out[-3000:] for out in outputs])
    assert len({t.number for t in trials}) == len(trials)
    references = Counter(t.user_attrs.get(REFERENCE_ATTR) for t in complete)
    assert references[NO_BATCHING] == 1 and references[TF_SERVING_RECOMMENDED] == 1
    assert not [t for t in trials if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    with SampleStore(url) as store:
        rows = store.read("shared")
    by_trial = {t.number: t.user_attrs.get("worker") for t in trials}
    assert rows and all(r.worker in WORKERS for r in rows)
    assert all(r.worker == by_trial[r.trial_number] for r in rows if r.phase == "trial")
    return trials


def test_three_tuners_with_their_own_configs_and_workdirs_share_one_study(
    tmp_path, postgres_url, demo_model_dir, child_tmpdir
) -> None:
    """Issue 16's set-up: each tuner has a config of its own, differing in its seed and
    workdir. Their slots (and so their ports) are the host's, not the workdir's."""
    configs = [f"tuner{i}.toml" for i in range(len(WORKERS))]
    for i, name in enumerate(configs):
        study = f'seed = {i}\nworkdir = "runs{i}"\n'
        write_config(tmp_path, postgres_url, demo_model_dir, 4, 30, name=name, study=study)
    tuners = start_tuners(tmp_path, child_tmpdir, configs)
    wait_for(lambda: any(t.state == TrialState.COMPLETE for t in trials_of(postgres_url)))
    shown = cli(tmp_path, "show", "--config", configs[0])  # while the others still run
    outputs = finish(tuners)

    assert [p.returncode for p in tuners] == [0, 0, 0], outputs
    assert shown.returncode == 0, shown.stderr[-1500:]
    assert "worker" in shown.stdout.splitlines()[0]
    trials = check_the_study(postgres_url, 4, outputs)
    # No tuner overshot n_trials: besides the 4 measured, only a failure of the bench (a Locust
    # that died on a loaded machine, say), each run again once and not counted.
    states = [
        (t.number, t.state.name, fail_reason(t), t.user_attrs.get("fail_detail")) for t in trials
    ]
    failed = [t for t in trials if t.state != TrialState.COMPLETE]
    assert all(fail_reason(t) in BENCH_FAULTS for t in failed), states
    reruns = [t.user_attrs.get(RETRY_ATTR) for t in trials]
    assert all(reruns.count(t.number) == 1 for t in failed), states
    ports = stored_trials(postgres_url, "shared")[1][PORTS_ATTR]
    assert len(ports) == 3 and len({p for slot in ports.values() for p in slot.values()}) == 6
    confirming = [out for out in outputs if "confirming the best" in out]
    assert len(confirming) == 1, outputs
    exported = cli(tmp_path, "export", "--config", configs[0], "--out", str(tmp_path / "b.txt"))
    # On a contended machine the no-batching reference may win: export says so in a sentence.
    assert exported.returncode == 0 or "no-batching reference" in exported.stderr
    assert "Traceback" not in exported.stderr


def test_a_killed_tuners_trial_is_measured_again_by_a_survivor(
    tmp_path, postgres_url, demo_model_dir, child_tmpdir
) -> None:
    # No confirmation pass: what is checked is the abandoned trial, measured again.
    write_config(tmp_path, postgres_url, demo_model_dir, n_trials=4, stale_after_s=3, top_k=0)
    tuners = start_tuners(tmp_path, child_tmpdir)
    victim = tuners[0]

    def victim_is_measuring() -> bool:
        children = psutil.Process(victim.pid).children(recursive=True)
        return any_running(children, "locust")

    wait_for(victim_is_measuring)
    running = [
        t
        for t in trials_of(postgres_url)
        if t.state == TrialState.RUNNING and t.user_attrs.get("worker") == WORKERS[0]
    ]
    # Its model server, service and Locust run in sessions of their own and outlive it (a
    # rerun of that tuner would stop them: tuner/coordination/leftovers.py); the test stops them
    # itself.
    orphans = psutil.Process(victim.pid).children(recursive=True)
    victim.send_signal(signal.SIGKILL)
    try:
        outputs = finish(tuners)
    finally:
        for orphan in orphans:
            with contextlib.suppress(psutil.Error):
                orphan.kill()

    assert [p.returncode for p in tuners[1:]] == [0, 0], outputs
    (lost,) = running
    trials = check_the_study(postgres_url, 4, outputs)
    assert fail_reason(trials[lost.number]) == ABANDONED
    (retry,) = [t for t in trials if t.user_attrs.get(RETRY_ATTR) == lost.number]
    assert retry.state == TrialState.COMPLETE
    assert retry.user_attrs["worker"] in WORKERS[1:]
    assert retry.params == lost.params

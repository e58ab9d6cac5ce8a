"""SIGTERM to a running tuner (what `docker stop` and Kubernetes send), a real `python -m
tuner optimize` process: its running trial marked interrupted, every child stopped, the exit
bounded, and the next run resumes the study."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import psutil
import pytest

from tests.support.faults import SHORT_STEPS, Fault, check_records, fault_config, finished
from tests.support.processes import live_command_lines
from tuner.config import load_config
from tuner.coordination.resume import RETRY_ATTR
from tuner.study.run import optimize

pytestmark = pytest.mark.slow


def test_sigterm_marks_the_trial_interrupted_stops_everything_and_the_study_resumes(
    tmp_path, demo_model_dir, child_tmpdir
) -> None:
    config = fault_config(tmp_path, demo_model_dir, n_trials=2)
    (tmp_path / "tuner.toml").write_text(
        f'[study]\nname = "e2e"\nn_trials = 2\nsampler = "random"\n'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{demo_model_dir}"\n'
        '[search]\nspace = "quick"\n[confirm]\ntop_k = 0\n[objective]\nslo_ms = 250.0\n'
        "[load]\n" + "".join(f"{k} = {v!r}\n".replace("'", '"') for k, v in SHORT_STEPS.items())
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "optimize"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # Where its private TMPDIR goes (tuner/coordination/private_tmpdir.py), to see it removed.
        env={**os.environ, "TMPDIR": str(child_tmpdir)},
    )
    fault = Fault(config, lambda: psutil.Process(proc.pid).children(recursive=True), trial=0)
    fault.start()
    fault.join(timeout=300)
    children = fault.result or []
    proc.send_signal(signal.SIGTERM)  # what `docker stop` and Kubernetes send
    try:
        _, stderr = proc.communicate(timeout=60)  # the bound: the children stop in seconds
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("the tuner did not exit within 60 s of SIGTERM")
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not live_command_lines(alive)
    assert not list(child_tmpdir.iterdir())  # nor any of their temporary files
    (interrupted, *_) = check_records(config)
    assert interrupted.user_attrs["fail_reason"] == "interrupted"

    result = optimize(load_config(tmp_path / "tuner.toml"), say=lambda line: None)
    assert result.trials_run == 2
    stored = check_records(config)
    assert len(finished(stored)) == 2
    assert [t.user_attrs.get(RETRY_ATTR) for t in stored if RETRY_ATTR in t.user_attrs] == [0]

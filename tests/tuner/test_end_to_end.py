"""The whole product on the demo model: real model server, service, Locust and SQLite.

Profiles are tiny (a few seconds of load per trial), so the figures are not meaningful;
what is checked is that every trial is measured, recorded and explained as a user needs.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import psutil
import pytest

from model_server.batching_parameters import load_file
from tests.support.model_server import running_model_server
from tests.support.processes import any_running, live_command_lines
from tuner.commands.export import export
from tuner.config import TunerConfig, load_config
from tuner.coordination.resume import counted_trials
from tuner.errors import TunerError
from tuner.storage import SampleStore
from tuner.study.run import load_existing_study, optimize

pytestmark = pytest.mark.slow
MEASURED_ATTRS = {
    "rps", "p50_ms", "p95_ms", "p99_ms", "error_rate", "failures_by_code", "mean_batch_size",
    "cpu_load_generator_percent", "cpu_service_percent", "cpu_model_server_percent",
    "generator_saturated", "saturation_reason", "settled", "settle_detail", "batching_file",
    "backend", "constraints", "feasible", "queue_full_errors", "server_down_errors",
}  # fmt: skip


def make_config(tmp_path: Path, demo_model_dir: Path, **sections) -> TunerConfig:
    overrides = {
        "study": {"name": "e2e", "storage": f"sqlite:///{tmp_path / 'tuning.db'}", "n_trials": 3},
        "server": {"backend": "embedded", "model_base_path": str(demo_model_dir)},
        "load": {
            "mode": "closed",
            "users": 8,
            "spawn_rate": 8.0,
            "warmup_s": 1.0,
            "measure_s": 3.0,
        },
        "search": {"space": "quick"},
        # the best re-measured once; the references' re-measurement is checked where a study
        # quotes ratios (test_capacity_end_to_end.py), and each costs two more searches here
        "confirm": {"top_k": 1, "repeats": 1, "references": False},
        "objective": {"slo_ms": 1000.0},
    }
    for section, values in sections.items():
        overrides.setdefault(section, {}).update(values)
    config = load_config(None, overrides)
    config.base_dir = tmp_path
    return config


@pytest.fixture(scope="module")
def study_dir(tmp_path_factory, demo_model_dir) -> Path:
    return tmp_path_factory.mktemp("study")


@pytest.fixture(scope="module")
def first_run(study_dir, demo_model_dir):
    config = make_config(study_dir, demo_model_dir)
    lines: list[str] = []
    result = optimize(config, say=lines.append)
    return config, result, lines


def test_three_trials_are_recorded_with_figures_and_artifacts(first_run) -> None:
    config, result, lines = first_run
    study = load_existing_study(config)
    trials = study.get_trials()
    assert len(trials) == 3
    assert [t.user_attrs.get("reference") for t in trials[:2]] == [
        "no_batching",
        "tf_serving_recommended",
    ]
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE, trial.user_attrs
        assert set(trial.user_attrs) >= MEASURED_ATTRS, MEASURED_ATTRS - set(trial.user_attrs)
        assert trial.value > 0
        assert trial.user_attrs["requests"] > 0
        assert trial.constraints  # feasibility is visible to Optuna and the dashboard
        assert trial.system_attrs["constraints"] == trial.user_attrs["constraints"]
        names = {
            a.filename
            for a in optuna.artifacts.get_all_artifact_meta(trial, storage=study._storage)
        }
        assert "server.log" in names and any(n.endswith(".csv") for n in names)
    assert trials[0].user_attrs["batching_file"] is None
    assert trials[0].user_attrs["mean_batch_size"] is None  # no batching: no batch series (as TF)
    assert trials[1].user_attrs["batching_file"].startswith("max_batch_size")
    assert sum("trial " in line and "req/s" in line for line in lines) == 3
    assert result.trials_run == 3


def test_per_interval_samples_are_stored(first_run) -> None:
    config, _, _ = first_run
    with SampleStore(config.study.storage) as store:
        samples = store.read("e2e", 1)
    measured = [s for s in samples if not s.in_warmup and s.phase == "trial"]
    assert len(measured) >= 2
    assert all(s.requests > 0 for s in measured)


def test_export_writes_a_file_the_model_server_accepts(first_run, demo_model_dir) -> None:
    config, result, _ = first_run
    assert result.winner is not None and result.winner["confirmed"]
    study = load_existing_study(config)
    out = config.base_dir / "batching_parameters.txt"
    if study.trials[result.winner["trial"]].user_attrs["batching_file"] is None:
        # 8 closed-loop users for 3 s: on a contended machine no batching can win, and then
        # export must refuse in a sentence and write nothing.
        with pytest.raises(TunerError, match="no-batching reference"):
            export(study, out, model_name="sentiment")
        assert not out.exists()
        return
    exported = export(study, out, model_name="sentiment")
    params = load_file(out)
    with running_model_server(demo_model_dir, batching=params) as server:
        assert server.process.poll() is None
    assert f"--batching_parameters_file={out.resolve()}" in exported.server_command


def test_resume_runs_only_the_missing_trials(first_run, demo_model_dir) -> None:
    config, _, _ = first_run
    resumed = make_config(config.base_dir, demo_model_dir, study={"n_trials": 4})
    result = optimize(resumed, say=lambda line: None)
    assert result.trials_run == 1
    study = load_existing_study(resumed)
    assert len(study.trials) == 4
    assert result.winner["confirmed"] and result.winner["runs"] >= 2  # medians, not one run
    confirmation = study.user_attrs["confirmation"][str(result.winner["trial"])]
    assert len(confirmation["rps"]) == result.winner["runs"]


def test_impossible_slo_gives_no_feasible_trial_and_export_refuses(tmp_path, demo_model_dir):
    config = make_config(
        tmp_path, demo_model_dir, study={"n_trials": 1}, objective={"slo_ms": 0.001}
    )
    result = optimize(config, say=lambda line: None)
    assert result.winner is None
    study = load_existing_study(config)
    assert study.trials[0].user_attrs["feasible"] is False
    with pytest.raises(TunerError, match="no feasible trial"):
        export(study, tmp_path / "b.txt", model_name="sentiment")


def test_a_server_that_cannot_start_at_all_stops_the_tuner_and_burns_no_trial(
    tmp_path, demo_model_dir
) -> None:
    """Not even without a batching file: the bench's fault, whatever the trial measures."""
    # The vocabulary is there (the service starts), the SavedModel is not (the server exits).
    broken_model = tmp_path / "broken-model"
    (broken_model / "1" / "assets").mkdir(parents=True)
    vocab = (demo_model_dir / "1" / "assets" / "vocab.txt").read_text()
    (broken_model / "1" / "assets" / "vocab.txt").write_text(vocab)
    config = make_config(tmp_path, demo_model_dir, study={"n_trials": 2})
    config.server.model_base_path = str(broken_model)
    with pytest.raises(TunerError, match=r"^3 trials in a row \(0, 1, 2\) .*server_start_failed"):
        optimize(config, say=lambda line: None)
    study = load_existing_study(config)
    failed = study.get_trials(states=[optuna.trial.TrialState.FAIL])
    assert len(failed) == 3 and counted_trials(study) == 0
    for trial in failed:
        assert trial.user_attrs["fail_reason"] == "server_start_failed"
        assert trial.user_attrs["exit_code"] == 255  # as tensorflow_model_server (main.cc)
        assert "no servable version" in trial.user_attrs["fail_detail"]


def test_a_server_that_never_gets_ready_fails_its_trial_and_is_stopped(tmp_path, demo_model_dir):
    config = make_config(
        tmp_path,
        demo_model_dir,
        study={"n_trials": 1, "max_bench_faults_in_a_row": 1},
        server={"ready_timeout_s": 0.05},
    )
    # Other test modules keep shared servers running; only what this study starts must go.
    before = {c.pid for c in psutil.Process().children(recursive=True)}
    with pytest.raises(TunerError, match=r"^trial 0 failed for a reason that is the bench's"):
        optimize(config, say=lambda line: None)
    trial, waiting = load_existing_study(config).trials  # the 2nd reference is still queued
    assert waiting.state == optuna.trial.TrialState.WAITING
    assert trial.state == optuna.trial.TrialState.FAIL
    # Not ready twice with no batching file: a server this slow is the bench's fault.
    assert trial.user_attrs["fail_reason"] == "server_start_failed"
    assert "not AVAILABLE within 0.05 s" in trial.user_attrs["fail_detail"]
    leftovers = live_command_lines(
        c for c in psutil.Process().children(recursive=True) if c.pid not in before
    )
    assert not [c for c in leftovers if "model_server" in c or "service" in c], leftovers


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tuner", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )


def test_unknown_config_key_is_one_line_and_exit_2(tmp_path) -> None:
    (tmp_path / "tuner.toml").write_text("[load]\nuser = 3\n")
    done = run_cli("optimize", cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "unknown key load.user" in done.stderr


def test_invalid_search_space_is_one_line_and_exit_2(tmp_path) -> None:
    (tmp_path / "bad.toml").write_text("[batching]\nmax_batch_size = { low = 64, high = 8 }\n")
    (tmp_path / "tuner.toml").write_text('[search]\nspace = "bad.toml"\n')
    done = run_cli("optimize", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0
    assert "max_batch_size" in done.stderr and "bad.toml" in done.stderr


# Resuming in capacity mode with short searches: two 1 s steps per trial.
RESUME_QUICKLY = {
    "load": {"step_measure_s": 1.0, "max_steps": 2, "step_extra_s": 0.0},
    "confirm": {"top_k": 0},
}


def start_tuner_inside_first_trial(
    tmp_path: Path, demo_model_dir: Path, tmpdir: Path, study: str = ""
) -> tuple[subprocess.Popen, psutil.Process]:
    """`python -m tuner optimize` in capacity mode (2 trials, 60 s steps), returned once trial
    0's load test is running."""
    (tmp_path / "tuner.toml").write_text(
        f'[study]\nname = "int"\nn_trials = 2\n{study}'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{demo_model_dir}"\n'
        f"[load]\nstart_rps = 20.0\nstep_warmup_s = 1.0\nstep_measure_s = 60.0\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "tuner", "optimize"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "TMPDIR": str(tmpdir)},
        # A shell without job control starts background jobs with SIGINT ignored, and Python
        # then keeps it ignored: give the tuner the SIGINT a terminal would.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    tuner = psutil.Process(proc.pid)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # until the load generator runs inside trial 0
        children = tuner.children(recursive=True)
        if any_running(children, "locust"):
            return proc, tuner
        time.sleep(0.5)
    proc.kill()
    pytest.fail("the first trial never started its load test")


def test_ctrl_c_marks_the_trial_interrupted_and_stops_everything(
    tmp_path, demo_model_dir, child_tmpdir
):
    proc, tuner = start_tuner_inside_first_trial(tmp_path, demo_model_dir, child_tmpdir)
    time.sleep(2)
    children = tuner.children(recursive=True)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=90)
    assert proc.returncode == 130
    assert "interrupted" in stderr and "Traceback" not in stderr
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not live_command_lines(alive)
    study = optuna.load_study(study_name="int", storage=f"sqlite:///{tmp_path / 'tuning.db'}")
    interrupted, *not_started = study.trials
    assert interrupted.state == optuna.trial.TrialState.FAIL
    assert interrupted.user_attrs["fail_reason"] == "interrupted"
    assert all(t.state == optuna.trial.TrialState.WAITING for t in not_started)

    # Resuming measures what the interruption cut short, and n_trials stays the total.
    config = load_config(tmp_path / "tuner.toml", RESUME_QUICKLY)
    result = optimize(config, say=lambda line: None)
    assert result.trials_run == 2
    trials = load_existing_study(config).trials
    assert [t.state for t in trials[1:]] == [optuna.trial.TrialState.COMPLETE] * 2
    assert trials[2].user_attrs["reference"] == "no_batching"
    assert trials[2].user_attrs["retry_of"] == 0


def test_a_killed_tuners_trial_is_abandoned_and_measured_again(
    tmp_path, demo_model_dir, child_tmpdir, monkeypatch
):
    proc, tuner = start_tuner_inside_first_trial(
        tmp_path, demo_model_dir, child_tmpdir, study="stale_after_s = 2\n"
    )
    time.sleep(2)  # a few heartbeats
    children = tuner.children(recursive=True)
    proc.kill()  # SIGKILL: the tuner can neither mark its trial nor stop its children
    proc.communicate(timeout=30)
    time.sleep(3.5)  # the heartbeat goes stale (older than 2 s on SQLite's whole-second clock)
    # The service is still running, orphaned. (The model server's launcher stops it once its
    # tuner is gone, so whether it is still up here is a matter of timing; Locust may have
    # ended too.)
    assert any_running(children, "-m service")
    left = list(child_tmpdir.glob("tuner.*"))  # its children's temporary files
    assert left

    monkeypatch.setenv("TMPDIR", str(child_tmpdir))  # the user's shell, as the first run had
    monkeypatch.setattr(tempfile, "tempdir", None)
    config = load_config(tmp_path / "tuner.toml", RESUME_QUICKLY)
    said: list[str] = []
    result = optimize(config, say=said.append)
    assert any(line.startswith("trial 0 was abandoned") for line in said), said
    assert any(line.startswith("stopped process") for line in said), said
    _, alive = psutil.wait_procs(children, timeout=10)
    assert not live_command_lines(alive)  # the next run stopped the orphans
    assert not any(path.exists() for path in left)  # and removed their temporary files
    assert result.trials_run == 2  # n_trials stays the total: the abandoned trial does not count
    abandoned, *rest = load_existing_study(config).trials
    assert abandoned.state == optuna.trial.TrialState.FAIL
    assert "fail_reason" not in abandoned.user_attrs
    assert [t.state for t in rest] == [optuna.trial.TrialState.COMPLETE] * 2
    assert rest[1].user_attrs["reference"] == "no_batching"
    assert rest[1].user_attrs["retry_of"] == 0

"""export and show on a real SQLite study whose trials carry what the objective records."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, load_file, render
from tuner.commands.export import export
from tuner.errors import TunerError
from tuner.review.show import show, winner_summary
from tuner.study.confirm import CONFIRMATION_ATTR, WINNER_ATTR
from tuner.trial_record import MODEL_PATH_ATTR


def add_trial(
    study: optuna.Study,
    *,
    rps: float,
    p95: float,
    batching: BatchingParameters | None,
    reference: str | None = None,
    feasible: bool = True,
    host_loop_ms: float | None = None,
    host_memory_ms: float | None = None,
) -> int:
    trial = study.ask({"max_batch_size": optuna.distributions.IntDistribution(1, 128)})
    if host_loop_ms is not None:
        trial.set_user_attr("host_loop_ms", host_loop_ms)
    if host_memory_ms is not None:
        trial.set_user_attr("host_memory_ms", host_memory_ms)
    if reference:
        trial.set_user_attr("reference", reference)
    trial.set_user_attr("batching_file", render(batching) if batching else None)
    trial.set_user_attr("server_flags", {"tensorflow_intra_op_parallelism": "1"})
    for key, value in {"rps": rps, "p50_ms": p95 / 2, "p95_ms": p95, "p99_ms": p95 * 1.2}.items():
        trial.set_user_attr(key, value)
    trial.set_user_attr("error_rate", 0.0)
    trial.set_user_attr("mean_batch_size", 4.0)
    trial.set_constraint("p95_minus_slo_ms", -1.0 if feasible else 50.0)
    trial.set_constraint("error_rate_minus_max", -0.01)
    study.tell(trial, rps)
    return trial.number


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    return optuna.create_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 't.db'}", direction="maximize"
    )


def test_export_writes_the_best_feasible_trial_in_tf_serving_format(study, tmp_path) -> None:
    good = BatchingParameters(max_batch_size=32, batch_timeout_micros=2000, num_batch_threads=2)
    add_trial(study, rps=500, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=900, p95=40, batching=good)
    add_trial(
        study, rps=2000, p95=400, batching=BatchingParameters(max_batch_size=64), feasible=False
    )
    result = export(study, tmp_path / "out" / "batching_parameters.txt", model_name="sentiment")
    assert result.trial == best
    assert load_file(result.path) == good
    assert "--enable_batching" in result.server_command
    assert f"--batching_parameters_file={result.path.resolve()}" in result.server_command
    assert "--tensorflow_intra_op_parallelism=1" in result.server_command
    assert result.embedded_command.startswith("python -m model_server --port=8500")
    assert "--model_base_path=/models/sentiment" in result.server_command
    assert not result.confirmed


def test_export_names_the_model_the_study_measured(study, tmp_path) -> None:
    """The recorded path, not the caller's (`tuner export` run from another directory without
    --config passed one under that directory, which held no model)."""
    add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    study.set_user_attr(MODEL_PATH_ATTR, "/srv/models/sentiment")
    result = export(
        study, tmp_path / "b.txt", model_name="sentiment", model_base_path=tmp_path / "models"
    )
    assert "--model_base_path=/srv/models/sentiment " in result.server_command
    assert "--model_base_path=/srv/models/sentiment " in result.embedded_command


def test_export_prefers_the_confirmed_winner(study, tmp_path) -> None:
    add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    second = add_trial(study, rps=800, p95=40, batching=BatchingParameters(max_batch_size=16))
    study.set_user_attr(WINNER_ATTR, {"trial": second, "median_rps": 850.0, "confirmed": True})
    result = export(study, tmp_path / "b.txt", model_name="m")
    assert result.trial == second and result.confirmed
    assert load_file(result.path).max_batch_size == 16


def test_export_refuses_without_a_feasible_trial(study, tmp_path) -> None:
    add_trial(
        study, rps=900, p95=400, batching=BatchingParameters(max_batch_size=8), feasible=False
    )
    with pytest.raises(TunerError, match="no feasible trial"):
        export(study, tmp_path / "b.txt", model_name="m")
    assert not (tmp_path / "b.txt").exists()


def test_export_explains_when_no_batching_wins(study, tmp_path) -> None:
    add_trial(study, rps=900, p95=20, batching=None, reference="no_batching")
    with pytest.raises(TunerError, match="no-batching reference"):
        export(study, tmp_path / "b.txt", model_name="m")


def test_show_lists_every_trial_and_marks_the_winner(study) -> None:
    add_trial(study, rps=500, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    failed = study.ask()
    failed.set_user_attr("fail_reason", "never_ready")
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    study.set_user_attr(WINNER_ATTR, {"trial": best, "median_rps": 900.0, "confirmed": True})
    lines = show(study).splitlines()
    assert lines[0].split()[:4] == ["#", "state", "params", "req/s"]
    assert "no batching" in lines[2] and "no_batching" in lines[2]
    assert "WINNER" in lines[3] and "900.0" in lines[3] and "yes" in lines[3]
    assert "FAIL" in lines[4] and "never_ready" in lines[4]


def test_show_and_summary_report_the_confirmed_medians(study) -> None:
    reference = add_trial(study, rps=400, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    study.set_user_attr(
        CONFIRMATION_ATTR,
        {str(best): {"trial": best, "rps": [900, 780, 800], "median_rps": 800.0, "feasible": True}},
    )
    study.set_user_attr(
        WINNER_ATTR,
        {"trial": best, "median_rps": 800.0, "median_p95_ms": 42.0, "runs": 3, "confirmed": True},
    )
    assert "confirmed median 800.0 req/s over 3 runs" in show(study).splitlines()[3]
    summary = winner_summary(study, "p95")
    assert summary.startswith(f"winner: trial {best} (max=")
    assert "800.0 req/s, p95 42.0 ms (median of 3 runs)" in summary
    assert f"no batching (trial {reference}): 400.0 req/s, p95 20.0 ms = 2.00x" in summary


def test_summary_says_when_no_batching_wins_or_nothing_is_feasible(study) -> None:
    assert "no feasible trial" in winner_summary(study, "p95")
    reference = add_trial(study, rps=400, p95=20, batching=None, reference="no_batching")
    study.set_user_attr(WINNER_ATTR, {"trial": reference, "median_rps": 400.0, "confirmed": True})
    assert "keep serving without --enable_batching" in winner_summary(study, "p95")


def test_without_confirmation_the_summary_names_the_trial_export_would_write(study) -> None:
    """confirm.top_k = 0: no winner attr, but export picks the best feasible trial; so must
    the summary, instead of claiming that nothing was feasible."""
    add_trial(study, rps=400, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    add_trial(
        study, rps=2000, p95=400, batching=BatchingParameters(max_batch_size=64), feasible=False
    )
    summary = winner_summary(study, "p95")
    assert summary.startswith(f"winner: trial {best} (max=")
    assert "900.0 req/s, p95 40.0 ms (single run, not confirmed)" in summary
    assert summary.endswith("= 2.25x")


def test_show_reads_a_running_trial_whose_attrs_are_still_arriving(study) -> None:
    """`show` during a study: the objective writes a trial's attrs one by one."""
    add_trial(study, rps=500, p95=20, batching=None, reference="no_batching")
    running = study.ask()
    running.set_user_attr("rps", 700.0)  # error_rate and the rest not written yet
    line = show(study).splitlines()[3]
    assert "RUNNING" in line and "700.0" in line


def confirmed_runs(trial: int, measured: list[float], bounds: list[float], median: float) -> dict:
    """A trial's confirmation record (tuner/study/confirm.py): its lower bounds set apart from
    its measured runs; every run a bound makes the figure itself a lower bound."""
    return {
        "trial": trial,
        "rps": [*bounds, *measured],
        "measured_rps": measured,
        "lower_bounds_rps": bounds,
        "median_rps": median,
        "lower_bound": not measured,
        "feasible": True,
    }


def test_show_and_summary_say_when_a_confirmed_capacity_is_a_lower_bound(study) -> None:
    reference = add_trial(study, rps=400, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=900, p95=40, batching=BatchingParameters(max_batch_size=8))
    bounded = confirmed_runs(reference, measured=[827.7], bounds=[31.1], median=827.7)
    only_bounds = confirmed_runs(best, measured=[], bounds=[900.0, 950.0], median=950.0)
    study.set_user_attr(CONFIRMATION_ATTR, {str(reference): bounded, str(best): only_bounds})
    study.set_user_attr(
        WINNER_ATTR,
        {
            "trial": best,
            "median_rps": 950.0,
            "median_p95_ms": 42.0,
            "runs": 2,
            "confirmed": True,
            "lower_bound": True,
        },
    )
    lines = show(study).splitlines()
    assert "set aside (>= 31.1)" in lines[2]
    assert "confirmed >= 950.0 req/s (a lower bound" in lines[3]
    summary = winner_summary(study, "p95")
    assert "a lower bound: no run crossed the SLO" in summary
    assert "827.7 req/s, p95 20.0 ms, median of 1 measured run, 1 lower bound set aside" in (
        summary
    )


def test_a_winner_with_a_bound_set_aside_counts_only_its_measured_runs(study) -> None:
    """Its median stands on one measured run: "median of 2 runs" would claim two."""
    add_trial(study, rps=400, p95=20, batching=None, reference="no_batching")
    best = add_trial(study, rps=300, p95=30, batching=BatchingParameters(max_batch_size=8))
    record = confirmed_runs(best, measured=[400.1], bounds=[300.0], median=400.1)
    study.set_user_attr(CONFIRMATION_ATTR, {str(best): record})
    study.set_user_attr(
        WINNER_ATTR,
        {"trial": best, "median_rps": 400.1, "median_p95_ms": 26.4, "runs": 2, "confirmed": True},
    )
    summary = winner_summary(study, "p95")
    assert "median of 1 measured run, 1 lower bound set aside (>= 300.0)" in summary
    assert "median of 2 runs" not in summary


def test_show_says_when_the_machine_s_speed_moved_between_trials(study) -> None:
    """A lasting change of the machine's speed moved every capacity of a bench run (r = -0.83):
    `show` names the fastest and slowest trials by their loop time, and stays quiet within
    the loop's own scatter."""
    for rps, loop_ms in ((500, 51.0), (900, 53.5), (700, 56.0)):
        add_trial(study, rps=rps, p95=20, batching=None, host_loop_ms=loop_ms)
    assert "speed moved" not in show(study)  # 51.0-56.0 ms: within 10%
    add_trial(study, rps=400, p95=20, batching=None, host_loop_ms=60.7)
    assert "a fixed loop took 51.0 ms of CPU in trial 0 and 60.7 ms in trial 3 (+19%" in show(study)


def test_show_says_when_the_machine_s_memory_moved_though_its_loop_did_not(study) -> None:
    """A neighbour competing for the shared cache and memory slows the model's reads, not an
    integer loop: over 40 repeated searches capacity followed the memory reads' time more
    closely (r = -0.51) than the loop's (-0.37)."""
    for rps, memory_ms in ((500, 0.27), (900, 0.28), (700, 0.29)):
        add_trial(study, rps=rps, p95=20, batching=None, host_loop_ms=4.0, host_memory_ms=memory_ms)
    assert "speed moved" not in show(study)
    add_trial(study, rps=400, p95=20, batching=None, host_loop_ms=4.1, host_memory_ms=0.33)
    note = show(study)
    assert "random reads in memory took 0.27 ms of CPU in trial 0 and 0.33 ms in trial 3" in note
    assert "a fixed loop took" not in note  # 4.0-4.1 ms: the loop held

"""What a capacity study shows: the table, the progress lines, the summary and export quote
capacity (and the latency at it) against both reference points. Trials are recorded from
real search outcomes (on a deterministic fake step) into a real SQLite study."""

from __future__ import annotations

import re
from pathlib import Path

import optuna
import pytest

from model_server.batching_parameters import BatchingParameters, load_file, render
from tests.tuner.capacity.fake_target import FakeTarget
from tuner.capacity import SearchSettings, StepCriteria, search
from tuner.capacity.record import capacity_attrs, ci_text, constraints
from tuner.commands.export import export
from tuner.config import load_config
from tuner.review.show import show, trial_rows, winner_summary
from tuner.study.progress import trial_line
from tuner.trial_record import record_constraints

CRITERIA = StepCriteria(percentile="p95", slo_ms=20.0, max_error_rate=0.01, min_goodput_ratio=0.95)
SETTINGS = SearchSettings(
    min_rps=10.0, max_rps=5000.0, resolution=0.05, max_steps=12, max_trial_s=1e9, step_s=4.0
)
DIST = {"max_batch_size": optuna.distributions.IntDistribution(1, 128)}


@pytest.fixture
def study(tmp_path: Path) -> optuna.Study:
    study = optuna.create_study(
        study_name="s", storage=f"sqlite:///{tmp_path / 't.db'}", direction="maximize"
    )
    study.set_user_attr("load_mode", "capacity")
    return study


def run_trial(
    study: optuna.Study, capacity: float, *, max_batch_size: int = 8, reference: str | None = None
) -> optuna.trial.FrozenTrial:
    """What the objective does with a search outcome, on a real trial."""
    study.enqueue_trial({"max_batch_size": max_batch_size})
    trial = study.ask(DIST)
    if reference:
        trial.set_user_attr("reference", reference)
    batching = None if reference == "no_batching" else BatchingParameters(max_batch_size)
    trial.set_user_attr("batching_file", render(batching) if batching else None)
    trial.set_user_attr("server_flags", {})
    feasible = [
        t.value
        for t in study.get_trials(states=[optuna.trial.TrialState.COMPLETE])
        if t.user_attrs.get("feasible")
    ]
    outcome = search(
        FakeTarget(capacity=capacity),
        SETTINGS,
        CRITERIA,
        start_rps=100.0,
        incumbent_rps=max(feasible, default=None),
        may_prune=reference is None,
        on_step=lambda p: trial.report(p.result.goodput_rps, step=p.step),
    )
    attrs = capacity_attrs(outcome, "p95")
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if outcome.pruned_because:
        trial.set_user_attr("pruned_because", outcome.pruned_because)
        study.tell(trial, state=optuna.trial.TrialState.PRUNED)
    else:
        values = constraints(outcome, "p95", 20.0, 0.01)
        record_constraints(trial, values)
        trial.set_user_attr("feasible", all(v <= 0 for v in values))
        study.tell(trial, attrs["capacity_rps"])  # rounded, as the tuner's objective tells it
    return study.trials[trial.number]


def without_intervals(text: str) -> str:
    """The summary with the ratios' " [low-high]" taken out."""
    return re.sub(r" \[[\d.]+-[\d.]+\]", "", text)


def test_table_lines_summary_and_export_speak_capacity(study, tmp_path) -> None:
    config = load_config(None, {"objective": {"slo_ms": 20.0}})
    base = run_trial(study, 200.0, reference="no_batching")  # SLO holds to 150 req/s
    tf = run_trial(study, 400.0, max_batch_size=64, reference="tf_serving_recommended")
    best = run_trial(study, 1000.0, max_batch_size=32)  # to 750
    pruned = run_trial(study, 300.0, max_batch_size=16)
    assert pruned.state == optuna.trial.TrialState.PRUNED
    assert len(pruned.user_attrs["capacity_curve"]) == 1
    assert pruned.intermediate_values.keys() == {0}

    line = trial_line(study, best, config)
    capacity = best.user_attrs["capacity_rps"]
    low, high = best.user_attrs["capacity_ci_rps"]
    assert low <= capacity <= high  # the crossing of 750 req/s lies in its interval
    assert low <= 750.0 <= high
    ci = f"(95% CI {low:.0f}-{high:.0f}, +-{best.user_attrs['capacity_precision']:.1%})"
    assert f"capacity {capacity:.1f} req/s {ci} at p95 " in line and "feasible" in line
    assert f"| best capacity {capacity:.1f} req/s" in line
    assert "PRUNED (1 step(s)" in trial_line(study, pruned, config)
    assert "cannot beat the best capacity so far" in trial_line(study, pruned, config)

    table = show(study).splitlines()
    assert table[0].split() == [
        "#", "state", "params", "capacity", "p50", "p95", "p99", "err%", "batch", "steps",
        "feasible", "notes",
    ]  # fmt: skip
    pruned_row = table[2 + pruned.number].split()
    assert pruned_row[1] == "PRUNED" and pruned_row[3].startswith("<")
    assert f"{capacity:.1f} [{low:.0f}-{high:.0f}]" in table[2 + best.number]

    summary = winner_summary(study, "p95")
    ratio_base = capacity / base.user_attrs["capacity_rps"]
    ratio_tf = capacity / tf.user_attrs["capacity_rps"]
    assert summary.startswith(
        f"winner: trial {best.number} (max=32) capacity {capacity:.1f} req/s {ci}"
    )
    # each ratio with its 95% interval, here from the single runs' capacity intervals
    quoted = rf"{ratio_base:.2f}x \[[\d.]+-[\d.]+\] no batching \(trial {base.number}: "
    assert re.search(quoted, summary)
    plain = without_intervals(summary)
    assert f"{ratio_tf:.2f}x TF Serving's recommended start (trial {tf.number}: " in plain
    assert ratio_base == pytest.approx(5.0, rel=0.1) and ratio_tf == pytest.approx(2.5, rel=0.1)

    result = export(study, tmp_path / "b.txt", model_name="m")
    assert result.trial == best.number and result.capacity
    assert load_file(result.path).max_batch_size == 32
    assert f"{ratio_base:.2f}x no batching" in without_intervals(result.versus)
    assert re.search(quoted, result.versus)


def test_a_trial_without_capacity_is_infeasible_and_says_why(study) -> None:
    config = load_config(None, {"objective": {"slo_ms": 20.0}})
    trial = run_trial(study, 5.0, reference="no_batching")  # nothing passes above min_rps
    assert trial.state == optuna.trial.TrialState.COMPLETE
    assert trial.value == 0.0 and trial.user_attrs["feasible"] is False
    assert any(c > 0 for c in trial.system_attrs["constraints"])
    assert "no tested rate passed" in trial.user_attrs["infeasible_reason"]
    assert "no capacity" in trial_line(study, trial, config)
    assert "no feasible trial" in winner_summary(study, "p95")


def test_a_confirmed_reference_is_quoted_by_its_median(study) -> None:
    run_trial(study, 200.0, reference="no_batching")
    tf = run_trial(study, 400.0, max_batch_size=64, reference="tf_serving_recommended")
    best = run_trial(study, 1000.0, max_batch_size=32)
    confirmation = {
        str(tf.number): {"trial": tf.number, "rps": [295.0, 250.0], "median_rps": 272.5},
        str(best.number): {"trial": best.number, "rps": [730.0, 700.0], "median_rps": 715.0},
    }
    study.set_user_attr("confirmation", confirmation)
    study.set_user_attr(
        "winner", {"trial": best.number, "median_rps": 715.0, "runs": 2, "confirmed": True}
    )
    summary = without_intervals(winner_summary(study, "p95"))
    assert f"{715.0 / 272.5:.2f}x TF Serving's recommended start (trial {tf.number}: 272.5" in (
        summary
    )
    assert "median of 2 runs)" in summary


def test_a_winning_reference_is_named_not_compared_with_itself(study) -> None:
    base = run_trial(study, 200.0, reference="no_batching")
    tf = run_trial(study, 400.0, max_batch_size=64, reference="tf_serving_recommended")
    summary = winner_summary(study, "p95")
    assert summary.startswith(f"winner: trial {tf.number} (max=64) capacity")
    assert "the winner is TF Serving's recommended start itself" in summary
    assert f"x no batching (trial {base.number}: " in without_intervals(summary)


def test_an_interval_with_no_decided_pass_says_it_is_open_below(study: optuna.Study) -> None:
    """A search whose only pass was undecided knows the capacity is below its failure, not by
    how much: its low end is 0, and that is said in words, never printed as a bound."""
    attrs = {"rps": 786.0, "capacity_rps": 786.0, "capacity_ci_rps": [0.0, 849.14]}
    attrs["capacity_precision"] = 0.54
    assert ci_text(attrs) == " (95% CI <= 849, open below: no passing step was decided)"
    study.add_trial(
        optuna.trial.create_trial(
            params={"max_batch_size": 8}, distributions=DIST, value=786.0, user_attrs=attrs
        )
    )
    assert trial_rows(study)[0][3] == "786.0 [?-849]"
    attrs["capacity_ci_rps"] = [780.0, 849.14]
    assert ci_text(attrs) == " (95% CI 780-849, +-54.0%)"


def test_an_interval_open_at_both_ends_prints_no_bound(study: optuna.Study) -> None:
    """No decided pass and no decided failure (TF Serving's start once, on a slow host: its
    passes undecided, its search ended on the budget): neither end is a bound, so no number is
    printed as one ("95% CI >= 0" said nothing true)."""
    attrs = {"rps": 170.6, "capacity_rps": 170.6, "capacity_ci_rps": [0.0, None]}
    assert ci_text(attrs) == " (95% CI open at both ends: no step was decided)"
    study.add_trial(
        optuna.trial.create_trial(
            params={"max_batch_size": 8}, distributions=DIST, value=170.6, user_attrs=attrs
        )
    )
    assert trial_rows(study)[0][3] == "170.6 [?-]"
    attrs["capacity_ci_rps"] = [150.0, None]
    assert ci_text(attrs) == " (95% CI >= 150, open above)"

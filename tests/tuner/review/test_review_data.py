"""What the report reads from a study: curves from the steps table, the scatter's points,
roles, the table, importances and the exported file."""

from __future__ import annotations

import optuna

from tests.support.studies import config_for, new_study
from tests.tuner.review.conftest import SLO_MS, WINNER
from tuner.review.data import review_data
from tuner.review.figures import report_figures
from tuner.storage import SampleStore


def _data(config, study=None):
    store = SampleStore(config.study.storage)
    try:
        study = study or optuna.load_study(study_name="s", storage=config.study.storage)
        return review_data(study, store, "p95", SLO_MS)
    finally:
        store.close()


def test_curves_come_from_the_steps_table_in_offered_rate_order(capacity_config, capacity_study):
    data = _data(capacity_config, capacity_study)
    assert data.capacity and data.metric == "capacity req/s"
    assert data.curve_source == "tuner_capacity_steps"
    by_trial = {c.trial: c for c in data.curves}
    assert sorted(by_trial) == [0, 1, 2, 3]  # completed trials only: not pruned #4, failed #5
    assert [p.offered_rps for p in by_trial[0].points] == [400, 600, 800]
    assert [p.passed for p in by_trial[0].points] == [True, True, False]
    assert by_trial[2].points[-1].p95_ms == 200


def test_roles_mark_the_winner_and_both_references(capacity_config, capacity_study):
    data = _data(capacity_config, capacity_study)
    roles = {c.trial: c.role for c in data.curves}
    assert roles == {0: "no_batching", 1: "tf_serving_recommended", WINNER: "winner", 3: ""}
    assert data.winner == WINNER
    assert "2.67x no batching" in data.headline and "3.20x TF Serving" in data.headline


def test_scatter_points_carry_feasibility_and_latency_at_capacity(capacity_config, capacity_study):
    points = {p.trial: p for p in _data(capacity_config, capacity_study).points}
    assert points[WINNER].rps == 1600 and points[WINNER].latency_ms == 38
    assert points[WINNER].feasible
    assert not points[3].feasible and points[3].latency_ms == 55  # lowest rate tried
    assert set(points) == {0, 1, 2, 3}


def test_table_has_every_trial_with_prune_and_fail_reasons(capacity_config, capacity_study):
    data = _data(capacity_config, capacity_study)
    notes = {row[0]: row[-1] for row in data.rows}
    assert len(data.rows) == 6
    assert "pruned: cannot beat the best capacity so far" in notes["4"]
    assert "never_ready" in notes["5"]
    assert data.states == {"COMPLETE": 4, "PRUNED": 1, "FAIL": 1}


def test_exported_file_is_the_winners(capacity_config, capacity_study):
    data = _data(capacity_config, capacity_study)
    assert data.batching_file == capacity_study.trials[WINNER].user_attrs["batching_file"]
    assert "max_batch_size" in data.batching_file


def test_importances_over_trials_that_set_every_parameter(capacity_config, capacity_study):
    data = _data(capacity_config, capacity_study)
    assert data.importances, data.importance_note
    assert set(data.importances) == set(capacity_study.trials[WINNER].params)
    assert "from 3 completed trials" in data.importance_note
    assert set(report_figures(data)) == {"curves", "scatter", "importances"}


def test_a_study_without_measurements_says_why_nothing_is_drawn(tmp_path):
    config = config_for(tmp_path)
    new_study(config)
    data = _data(config)
    assert data.curves == [] and data.points == [] and data.importances == {}
    assert "at least 2 completed trials" in data.importance_note
    assert data.batching_file is None and "no measured trial" in data.batching_note
    assert "importances" not in report_figures(data)


def test_closed_loop_curves_are_the_measured_intervals(tmp_path):
    """A closed-mode study has no steps: each measured interval (warm-up left out) is a point
    of throughput against latency, from the samples table."""
    from tuner.load import IntervalSample
    from tuner.trial_record import record_constraints

    config = config_for(tmp_path)
    study = new_study(config)
    study.set_user_attr("load_mode", "closed")
    trial = study.ask()
    for key, value in {"rps": 90.0, "p95_ms": 30.0, "error_rate": 0.0}.items():
        trial.set_user_attr(key, value)
    record_constraints(trial, [30.0 - SLO_MS, -0.01])
    intervals = [
        IntervalSample(0, 1.0, True, 50, 0, 50.0, 5.0, 9.0, 12.0),
        IntervalSample(1, 2.0, False, 100, 10, 100.0, 6.0, 31.0, 40.0),
        IntervalSample(2, 3.0, False, 80, 0, 80.0, 5.0, 29.0, 35.0),
    ]
    store = SampleStore(config.study.storage)
    try:
        store.write("s", trial.number, intervals)
    finally:
        store.close()
    study.tell(trial, 90.0)
    data = _data(config)
    assert not data.capacity and data.metric == "goodput req/s"
    assert data.curve_source == "tuner_load_samples"
    (curve,) = data.curves
    assert [(p.offered_rps, p.goodput_rps, p.p95_ms) for p in curve.points] == [
        (80.0, 80.0, 29.0),
        (100.0, 90.0, 31.0),
    ]
    assert curve.role == "winner"  # the only feasible trial, though it is the no-batching one

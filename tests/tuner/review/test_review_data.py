"""What the report reads from a study: curves from the steps table, the scatter's points,
roles, the table, importances and the exported file."""

from __future__ import annotations

import optuna

from storage import SampleStore
from tests.support.studies import config_for, new_study
from tests.tuner.review.conftest import SLO_MS, WINNER
from tuner.review.data import review_data
from tuner.review.figures import report_figures


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

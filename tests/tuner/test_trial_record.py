"""The one feasibility rule, as every reader of a trial applies it, and the best feasible
configurations it picks."""

from __future__ import annotations

import optuna

from tuner.trial_record import (
    CONSTRAINTS_ATTR,
    NO_LATENCY_MS,
    best_feasible,
    constraint_values,
    is_feasible,
    meets,
    record_constraints,
)


def test_constraints_are_the_distances_to_the_limits() -> None:
    assert constraint_values(80.0, 0.001, 100.0, 0.01) == [-20.0, 0.001 - 0.01]
    assert meets(constraint_values(100.0, 0.01, 100.0, 0.01))  # on the limit is within it
    assert not meets(constraint_values(100.5, 0.0, 100.0, 0.01))
    assert not meets(constraint_values(10.0, 0.02, 100.0, 0.01))


def test_no_latency_is_infeasible_however_lax_the_slo() -> None:
    values = constraint_values(None, 0.0, 10_000.0, 1.0)
    assert values[0] == NO_LATENCY_MS - 10_000.0 and not meets(values)


def test_recorded_constraints_are_what_optuna_and_the_dashboard_read() -> None:
    study = optuna.create_study(direction="maximize")
    for values in ([-1.0, -0.01], [5.0, -0.01]):
        trial = study.ask()
        record_constraints(trial, values)
        study.tell(trial, 1.0)
    unmeasured = study.ask()
    study.tell(unmeasured, 1.0)
    feasible, infeasible, never = study.trials
    assert feasible.system_attrs[CONSTRAINTS_ATTR] == feasible.user_attrs[CONSTRAINTS_ATTR]
    assert is_feasible(feasible) and not is_feasible(infeasible) and not is_feasible(never)


def test_the_best_configurations_are_distinct_a_twin_stands_aside() -> None:
    study = optuna.create_study(direction="maximize")
    sizes = optuna.distributions.CategoricalDistribution([8, 32, 64, 128])
    for size, value, constraints in (
        (32, 2511.6, [-10.0, -0.01]),  # the best
        (128, 1206.0, [-10.0, -0.01]),
        (32, 2379.5, [-9.0, -0.01]),  # its twin: the same parameters, measured again
        (8, 2355.0, [-12.0, -0.01]),  # the best other configuration
        (64, 3000.0, [5.0, -0.01]),  # over the SLO: not feasible
    ):
        study.enqueue_trial({"max_batch_size": size})
        trial = study.ask({"max_batch_size": sizes})
        record_constraints(trial, constraints)
        study.tell(trial, value)
    assert [t.value for t in best_feasible(study, 2)] == [2511.6, 2355.0]
    assert [t.value for t in best_feasible(study, 5)] == [2511.6, 2355.0, 1206.0]
    assert [t.value for t in best_feasible(study, 1)] == [2511.6]

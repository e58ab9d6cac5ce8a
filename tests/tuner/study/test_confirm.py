"""The confirmation pass decides on medians over every run, not on one lucky run."""

from __future__ import annotations

import optuna

from tuner.config import load_config
from tuner.study.bounds import describe_confirmed, runs_text
from tuner.study.confirm import summarize
from tuner.trial_record import CONFIRMATION_ATTR, best_feasible_value, incumbent


def runs(*figures: tuple[float, float | None, float]) -> list[dict]:
    return [{"rps": r, "latency_ms": ms, "error_rate": e} for r, ms, e in figures]


def test_medians_over_all_runs_decide_feasibility() -> None:
    config = load_config(None, {"objective": {"slo_ms": 100.0, "max_error_rate": 0.01}})
    lucky = summarize(3, runs((900, 90, 0), (600, 130, 0), (610, 120, 0)), config)
    assert lucky["median_rps"] == 610 and lucky["median_p95_ms"] == 120
    assert lucky["feasible"] is False  # the first run met the SLO, the repeats did not
    steady = summarize(4, runs((700, 80, 0), (720, 85, 0.02), (690, 90, 0)), config)
    assert steady["median_rps"] == 700 and steady["feasible"] is True
    assert steady["rps"] == [700, 720, 690] and len(steady["runs"]) == 3


def test_no_latency_at_all_is_infeasible() -> None:
    config = load_config(None, {"objective": {"percentile": "p99"}})
    result = summarize(1, runs((0, None, 1.0), (0, None, 1.0)), config)
    assert result["median_p99_ms"] is None and result["feasible"] is False


def _feasible_trial(value: float) -> optuna.trial.FrozenTrial:
    return optuna.trial.create_trial(value=value, system_attrs={"constraints": [-1.0, -0.01]})


def test_the_incumbent_is_a_confirmed_median_not_its_lucky_first_run() -> None:
    study = optuna.create_study(direction="maximize")
    for value in (398.3, 250.0, 120.0):
        study.add_trial(_feasible_trial(value))
    assert best_feasible_value(study) == 398.3  # nothing re-measured yet: the best run
    study.set_user_attr(
        CONFIRMATION_ATTR,
        {
            "0": {"trial": 0, "median_rps": 263.8, "feasible": True},
            "1": {"trial": 1, "median_rps": 240.0, "feasible": True},
        },
    )
    assert best_feasible_value(study) == 263.8
    study.set_user_attr(
        CONFIRMATION_ATTR, {"0": {"trial": 0, "median_rps": 380.0, "feasible": False}}
    )
    assert best_feasible_value(study) == 250.0  # re-measured infeasible: no longer the bar


def test_the_incumbent_comes_with_the_low_end_of_its_interval() -> None:
    """What a configuration must fail below to be pruned: the best search's own low end, the
    lowest of a confirmed trial's runs', none where a run has no interval."""
    study = optuna.create_study(direction="maximize")
    assert incumbent(study) is None
    for value, ci in ((431.4, [198.5, 561.4]), (250.0, [240.0, 260.0]), (120.0, None)):
        trial = _feasible_trial(value)
        trial.set_user_attr("capacity_ci_rps", ci)
        study.add_trial(trial)
    assert incumbent(study) == (431.4, 198.5)
    runs_of_0 = [
        {"rps": r, "ci": ci} for r, ci in ((431.4, [198.5, 561.4]), (380.0, [360.0, 400.0]))
    ]
    study.set_user_attr(
        CONFIRMATION_ATTR,
        {"0": {"trial": 0, "median_rps": 405.7, "feasible": True, "runs": runs_of_0}},
    )
    assert incumbent(study) == (405.7, 198.5)
    runs_of_0.append({"rps": 500.0, "ci": [0.0, 520.0]})  # one run open below: nothing proven
    study.set_user_attr(
        CONFIRMATION_ATTR,
        {"0": {"trial": 0, "median_rps": 431.4, "feasible": True, "runs": runs_of_0}},
    )
    assert incumbent(study) == (431.4, 0.0)
    study.set_user_attr(
        CONFIRMATION_ATTR, {"0": {"trial": 0, "median_rps": 80.0, "feasible": True}}
    )
    assert incumbent(study) == (250.0, 240.0)
    study.set_user_attr(
        CONFIRMATION_ATTR,
        {
            "0": {"trial": 0, "median_rps": 80.0, "feasible": True},
            "1": {"trial": 1, "median_rps": 100.0, "feasible": False},
        },
    )
    assert incumbent(study) == (120.0, None)  # closed mode or an older study: no interval


def test_a_lower_bound_is_never_averaged_with_a_measurement() -> None:
    """The image model's TF Serving reference: its trial's search stopped on the budget at
    31.1 req/s (interval open above), its confirmation measured 827.7; "429.4" was neither."""
    config = load_config(None, {"objective": {"slo_ms": 220.0}})
    trial = {"rps": 31.1, "latency_ms": 4.6, "error_rate": 0.0, "ci": [31.0, None]}
    confirmed = {"rps": 827.7, "latency_ms": 6.0, "error_rate": 0.0, "ci": [800.0, 850.0]}
    mixed = summarize(1, [trial, confirmed], config)
    assert mixed["median_rps"] == 827.7 and not mixed["lower_bound"]
    assert mixed["measured_rps"] == [827.7] and mixed["lower_bounds_rps"] == [31.1]
    assert describe_confirmed(mixed) == (
        "median 827.7 req/s over 1 measured run, 1 lower bound set aside (>= 31.1)"
    )
    two = {"rps": [], "measured_rps": [820.0, 830.0], "lower_bounds_rps": [31.1, 40.2]}
    assert runs_text(two) == ", median of 2 measured runs, 2 lower bounds set aside (>= 40.2)"
    both = summarize(1, [trial, {**confirmed, "ci": [820.0, None]}], config)
    assert both["lower_bound"] and both["median_rps"] == 827.7  # at least the highest bound
    assert describe_confirmed(both).startswith(">= 827.7 req/s (a lower bound: none of its 2")
    closed = summarize(1, runs((900, 90, 0), (600, 90, 0)), config)  # closed loop: no interval
    assert closed["median_rps"] == 750 and not closed["lower_bound"]
    assert describe_confirmed(closed) == "median 750.0 req/s over 2 runs"

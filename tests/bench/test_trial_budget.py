"""Reading a study's searches again under a smaller load.max_trial_s: a search with a smaller
budget runs a prefix of a larger one's steps, so cutting the recorded steps is exact."""

from __future__ import annotations

import dataclasses
import json

import optuna
import pytest

from bench.trial_budget import cut, main
from tests.tuner.capacity.fake_target import FakeTarget
from tests.tuner.capacity.test_search import CRITERIA, settings
from tuner.capacity import search
from tuner.capacity.step import CurvePoint


class SlowTarget:
    """FakeTarget whose steps take 4-9 s of a clock that only they move."""

    def __init__(self, capacity: float) -> None:
        self.target = FakeTarget(capacity=capacity)
        self.now = 0.0

    def __call__(self, rate: float):
        result = self.target(rate)
        elapsed = 4.0 + len(self.target.asked) % 6
        self.now += elapsed
        return dataclasses.replace(result, elapsed_s=elapsed)


def searched(capacity: float, budget: float):
    target = SlowTarget(capacity)
    return search(
        target, settings(max_trial_s=budget), CRITERIA, start_rps=100.0, clock=lambda: target.now
    )


@pytest.mark.parametrize("budget", [10.0, 21.0, 33.0, 47.0])
def test_cutting_a_whole_search_gives_what_the_smaller_budget_measures(budget: float) -> None:
    whole = searched(800.0, 1e9)
    short = searched(800.0, budget)
    assert len(short.points) < len(whole.points)
    kept = cut(whole.points, settings(max_trial_s=budget), CRITERIA)
    assert kept.seconds == sum(p.result.elapsed_s for p in short.points)
    assert kept.interval == short.interval


def test_a_stored_curve_reads_back_as_the_points_that_were_judged() -> None:
    whole = searched(800.0, 1e9)
    again = [CurvePoint.from_dict(p.as_dict()) for p in whole.points]
    assert [p.verdict for p in again] == [p.verdict for p in whole.points]
    assert [p.result.target_rps for p in again] == pytest.approx(
        [p.result.target_rps for p in whole.points], rel=1e-4
    )


def study_with_two_searches_of_one_point(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    for capacity in (800.0, 880.0):
        outcome = searched(capacity, 1e9)
        study.add_trial(
            optuna.trial.create_trial(
                params={"max_batch_size": 8},
                distributions={"max_batch_size": optuna.distributions.IntDistribution(1, 64)},
                value=outcome.capacity_rps,
                user_attrs={"capacity_curve": [p.as_dict() for p in outcome.points]},
            )
        )
    return url


def test_the_cli_reports_each_budget_and_the_noise_between_repeats(tmp_path, capsys) -> None:
    url = study_with_two_searches_of_one_point(tmp_path)
    config = tmp_path / "tuner.toml"
    config.write_text("[objective]\nslo_ms = 20\n[load]\nmode = 'capacity'\nmax_trial_s = 1000\n")
    out = tmp_path / "budget.json"
    args = ["--config", str(config), "--storage", url, "--study", "s", "--json", str(out)]
    assert main([*args, "--budget", "1000", "--budget", "12"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines] == ["max_trial_s 1000", "max_trial_s 12"]
    whole, short = json.loads(out.read_text())["budgets"]
    assert whole["within_5pct_of_whole_search"] == 1.0
    # the two searches of the point read ~800 and ~880 req/s capacities: 9-10% apart
    assert 0.07 < whole["whole_off_from_other_searches"]["median"] < 0.11
    assert short["seconds"]["median"] < whole["seconds"]["median"]
    assert short["within_5pct_of_whole_search"] < 1.0


def test_a_study_that_is_not_there_is_one_sentence_and_exit_2(tmp_path, capsys) -> None:
    url = study_with_two_searches_of_one_point(tmp_path)
    assert main(["--storage", url, "--study", "nope", "--budget", "30"]) == 2
    err = capsys.readouterr().err
    assert "no study named 'nope'" in err and len(err.strip().splitlines()) == 1
    missing = f"sqlite:///{tmp_path / 'missing.db'}"
    assert main(["--storage", missing, "--study", "s", "--budget", "30"]) == 2
    assert "no database at" in capsys.readouterr().err
    assert not (tmp_path / "missing.db").exists()

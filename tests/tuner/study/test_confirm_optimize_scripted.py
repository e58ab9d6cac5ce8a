"""The confirmation pass and a whole optimize() run with a scripted measurer (no process):
the winner chosen on medians, n_trials as the study's total, the references queued once."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.support.fake_measurer import FakeMeasurer, Served, fake_parts
from tests.support.scripted import run
from tests.support.studies import config_for
from tuner.errors import TrialFailed
from tuner.review.show import winner_summary
from tuner.storage import SampleStore
from tuner.study.confirm import CONFIRMATION_ATTR, WINNER_ATTR, confirm
from tuner.study.run import open_study, optimize
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, TF_SERVING_RECOMMENDED


def lucky_once(runs: Counter):
    """Batching (the recommended reference) measures 400 req/s once, then 150; no batching
    measures 200 every time. Both within the SLO."""

    def served(batching, flags, rate) -> Served:
        key = "batching" if batching is not None else "none"
        runs[key] += 1
        if key == "none":
            return Served(rps=200.0, p95_ms=40.0)
        return Served(rps=400.0 if runs[key] == 1 else 150.0, p95_ms=40.0)

    return served


def confirmed(
    tmp_path: Path,
    served,
    repeats: int = 2,
    *,
    top_k: int = 2,
    n_trials: int = 2,
    references: bool = True,
):
    """`n_trials` of a closed-loop study scored by `served`, then the confirmation pass."""
    config = config_for(tmp_path)
    config.load.mode = "closed"
    config.confirm.top_k, config.confirm.repeats = top_k, repeats
    config.confirm.references = references
    fake = FakeMeasurer(served)
    study = run(tmp_path, served, "closed", n_trials=n_trials, fake=fake)
    lines: list[str] = []
    with SampleStore(config.study.storage) as samples:
        winner = confirm(study, config, fake, samples, tmp_path / "runs", lines.append)
    return study, winner, fake, lines


def test_the_winner_is_chosen_on_medians_not_on_one_lucky_run(tmp_path: Path) -> None:
    runs: Counter = Counter()
    study, winner, fake, _ = confirmed(tmp_path, lucky_once(runs))
    lucky, steady = study.trials[1], study.trials[0]
    assert lucky.value == 400.0 > steady.value  # the study's best single run
    versus = winner.pop("versus_runner_up")
    assert winner == {
        "trial": steady.number,
        "median_rps": 200.0,
        "median_p95_ms": 40.0,
        "runs": 3,
        "confirmed": True,
        "runner_up": lucky.number,
        "tied_with": [lucky.number],
    }
    # 2 rounds: the interval comes from the study's run-to-run spread, which the lucky run
    # (400, then 150 twice) makes wide enough that the two cannot be told apart
    assert versus[0] == pytest.approx(200.0 / 150.0, abs=1e-4) and versus[1] < 1.0 < versus[2]
    winner["versus_runner_up"] = versus
    assert study.user_attrs[WINNER_ATTR] == winner
    results = study.user_attrs[CONFIRMATION_ATTR]
    assert results[str(lucky.number)]["rps"] == [400.0, 150.0, 150.0]
    assert results[str(lucky.number)]["median_rps"] == 150.0
    assert runs == {"batching": 3, "none": 3}  # each trial's run and two repeats
    # interleaved: each round measures both, in its own random order
    names = [c.workdir.name for c in fake.calls[2:]]
    assert sorted(names[:2]) == ["confirm-trial-0000-0", "confirm-trial-0001-0"]
    assert sorted(names[2:]) == ["confirm-trial-0000-1", "confirm-trial-0001-1"]


def unlucky_no_batching_once(runs: Counter):
    """No batching measures 100 req/s in its trial (0), then 200 every time; batching 400,
    except in the recommended start's own trial (1): 300, so the sampled trial 2 is best."""

    def served(batching, flags, rate) -> Served:
        key = "batching" if batching is not None else "none"
        runs[key] += 1
        if key == "none":
            return Served(rps=100.0 if runs[key] == 1 else 200.0, p95_ms=40.0)
        return Served(rps=300.0 if runs[key] == 1 else 400.0, p95_ms=40.0)

    return served


def confirm_best_one(tmp_path: Path, served, references: bool):
    return confirmed(tmp_path, served, top_k=1, n_trials=3, references=references)


def test_the_references_are_re_measured_so_ratios_compare_medians(tmp_path: Path) -> None:
    runs: Counter = Counter()
    study, winner, fake, lines = confirm_best_one(tmp_path, unlucky_no_batching_once(runs), True)
    assert "the best 1 feasible trials and 2 reference point(s)" in lines[0]
    no_batching = study.user_attrs[CONFIRMATION_ATTR]["0"]
    assert no_batching["rps"] == [100.0, 200.0, 200.0]
    assert study.user_attrs[CONFIRMATION_ATTR]["1"]["median_rps"] == 400.0
    assert winner["trial"] == 2  # a reference re-measured is a yardstick, not a candidate
    # two rounds: the interval is the study's run-to-run spread's (no batching's 100 -> 200)
    assert winner_summary(study, "p95").endswith(
        "; no batching (trial 0): 200.0 req/s, p95 40.0 ms, median of 3 runs = 2.00x [1.21-3.30]"
    )
    names = [c.workdir.name for c in fake.calls[3:]]
    assert sorted(names[:3]) == [f"confirm-trial-000{n}-0" for n in (0, 1, 2)]
    assert sorted(names[3:]) == [f"confirm-trial-000{n}-1" for n in (0, 1, 2)]


def test_references_false_re_measures_only_the_best(tmp_path: Path) -> None:
    runs: Counter = Counter()
    study, _, fake, lines = confirm_best_one(tmp_path, unlucky_no_batching_once(runs), False)
    assert "reference point" not in lines[0]
    assert len(fake.calls) == 3 + 2
    # the winner's three runs agree exactly (a scripted target): a spread of 0
    assert winner_summary(study, "p95").endswith(
        "; no batching (trial 0): 100.0 req/s, p95 40.0 ms = 4.00x [4.00-4.00]"
    )


def test_with_no_candidate_feasible_on_repeats_the_best_single_run_wins(tmp_path: Path) -> None:
    runs: Counter = Counter()

    def worse_on_repeats(batching, flags, rate) -> Served:
        runs[batching is None] += 1
        return Served(rps=300.0, p95_ms=40.0 if runs[batching is None] == 1 else 900.0)

    study, winner, _, lines = confirmed(tmp_path, worse_on_repeats)
    assert winner["confirmed"] is False and winner["runs"] == 1
    assert winner["trial"] == study.best_trial.number
    assert "no candidate stayed feasible when re-measured" in "\n".join(lines)


def test_a_failed_repeat_is_said_and_left_out_of_the_medians(tmp_path: Path) -> None:
    runs: Counter = Counter()

    def fails_second_time(batching, flags, rate) -> Served:
        runs[batching is None] += 1
        if runs[batching is None] == 2:
            raise TrialFailed("never_ready", "the model server never became ready")
        return Served(rps=100.0 if batching is None else 300.0, p95_ms=40.0)

    _, winner, _, lines = confirmed(tmp_path, fails_second_time)
    assert "round 1: failed (never_ready)" in "\n".join(lines)
    assert winner["trial"] == 1 and winner["runs"] == 2  # its own run and one repeat


def optimize_config(tmp_path: Path, n_trials: int):
    config = config_for(tmp_path, n_trials=n_trials)
    config.load.mode = "closed"
    config.confirm.top_k, config.confirm.repeats = 1, 1
    (tmp_path / "model").mkdir(exist_ok=True)
    config.server.model_base_path = str(tmp_path / "model")
    return config


def steady(batching, flags, rate) -> Served:
    return Served(rps=200.0 + (batching.max_batch_size if batching else 0), p95_ms=40.0)


def test_optimize_runs_n_trials_in_total_with_the_references_queued_once(tmp_path: Path) -> None:
    fake = FakeMeasurer(steady)
    lines: list[str] = []
    first = optimize(optimize_config(tmp_path, 4), lines.append, parts=fake_parts(fake))
    assert first.trials_run == 4
    assert first.winner is not None and first.winner["confirmed"]
    # four trials; the best (the recommended start) and no batching re-measured once each
    assert len(fake.calls) == 4 + 2
    assert "model server: scripted (fake_measurer)" in lines

    again = optimize(optimize_config(tmp_path, 4), lines.append, parts=fake_parts(fake))
    assert again.trials_run == 0 and again.winner == first.winner
    more = optimize(optimize_config(tmp_path, 6), lines.append, parts=fake_parts(fake))
    assert more.trials_run == 2

    study = open_study(optimize_config(tmp_path, 6))
    assert len(study.trials) == 6
    references = Counter(t.user_attrs.get(REFERENCE_ATTR) for t in study.trials)
    assert references == {NO_BATCHING: 1, TF_SERVING_RECOMMENDED: 1, None: 4}
    assert study.trials[0].user_attrs[REFERENCE_ATTR] == NO_BATCHING
    assert {t.user_attrs["backend"] for t in study.trials} == {"fake"}


def test_optimize_in_capacity_mode_searches_and_confirms_capacities(tmp_path: Path) -> None:
    def knee(batching, flags, rate) -> Served:
        capacity = 40.0 if batching is None else 5.0 * batching.max_batch_size
        return Served(rps=min(rate, capacity), p95_ms=30.0 if rate <= capacity else 400.0)

    config = optimize_config(tmp_path, 3)
    config.load.mode = "capacity"
    fake = FakeMeasurer(knee)
    result = optimize(config, lambda line: None, parts=fake_parts(fake))
    assert result.trials_run == 3
    study = open_study(config)
    complete = [t for t in study.trials if t.value is not None]
    best = max(complete, key=lambda t: t.value)  # top_k = 1: the best single search
    assert result.winner is not None and result.winner["trial"] == best.number
    confirmation = study.user_attrs[CONFIRMATION_ATTR][str(best.number)]
    assert len(confirmation["runs"]) == 2 and confirmation["feasible"]

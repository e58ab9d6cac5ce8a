"""demo_winners' count of the host's slow spells: from the study's pause file and the steps
its trials measured again for one."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from bench.demo_winners import distinct_winners, first_start_rps, host_spells, rounds_for


def test_host_spells_are_counted_from_the_pause_file_and_the_curves(tmp_path: Path) -> None:
    pauses = tmp_path / "pauses.jsonl"
    lines = [
        {"p": "host", "pid": 1, "t": 1.0, "ms": 500.0, "kind": "slow_host"},
        {"p": "service", "pid": 2, "t": 2.0, "ms": 30.0, "kind": "loop"},
        {"p": "host", "pid": 1, "t": 9.0, "ms": 750.0, "kind": "slow_host"},
    ]
    pauses.write_text("".join(json.dumps(x) + "\n" for x in lines) + "{torn")
    study = optuna.create_study()
    trial = study.ask()
    trial.set_user_attr(
        "capacity_curve",
        [
            {"step": 0, "remeasured_because": "the machine itself ran slow for 500 ms ..."},
            {"step": 1, "remeasured_because": "a 30 ms pause of the service hit the window"},
            {"step": 2, "remeasured_because": None},
        ],
    )
    study.tell(trial, 1.0)
    assert host_spells(pauses, study) == {"spells": 2, "longest_ms": 750.0, "steps": 1}
    assert host_spells(tmp_path / "none.jsonl", study)["spells"] == 0


def test_the_first_re_measuring_search_starts_at_the_winners_median_capacity() -> None:
    winners = [
        {"confirmed_median_rps": 2595.8},
        {"confirmed_median_rps": None},  # a winner whose confirmation measured nothing
        {"confirmed_median_rps": 2459.2},
        {"confirmed_median_rps": 2666.8},
    ]
    assert first_start_rps(winners) == 2595.8
    assert first_start_rps([{"confirmed_median_rps": None}]) is None


def test_studies_that_crown_one_configuration_are_re_measured_as_one() -> None:
    batched = {"max_batch_size": 32, "batch_timeout_micros": 5000}
    winners = [
        {"study": "demo-0", "winner_params": dict(batched)},
        {"study": "demo-1", "winner_params": {**batched, "num_batch_threads": 1}},
        {"study": "demo-2", "winner_params": dict(reversed(batched.items()))},
    ]
    groups = distinct_winners(winners)
    assert list(groups) == ["demo-0+demo-2", "demo-1"]
    assert [w["study"] for w in groups["demo-0+demo-2"]] == ["demo-0", "demo-2"]
    # the searches add up to what three winners would have had: 3 rounds x 3 = 9
    assert rounds_for(3, 1, 3) == 9
    assert rounds_for(3, 2, 3) == 5
    assert rounds_for(3, 3, 3) == 3

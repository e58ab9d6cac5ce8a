"""demo_winners' count of the host's slow spells: from the study's pause file and the steps
its trials measured again for one."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from bench.demo_winners import first_start_rps, host_spells


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

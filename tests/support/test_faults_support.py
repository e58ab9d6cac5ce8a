"""The fault helpers read where a trial's step is from its own interval stream."""

from __future__ import annotations

import json

from tests.support.faults import intervals_seen, step_progress, study_workdir
from tuner.config import load_config


def _write(config, lines: list[dict]) -> None:
    path = study_workdir(config) / "trial-0003" / "load" / "intervals.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"step": 5, "ind')


def test_a_step_that_ended_early_is_over_before_its_window(tmp_path) -> None:
    config = load_config(None, {"study": {"name": "s"}})
    config.base_dir = tmp_path
    assert step_progress(config, 3, 4) == (0, False)  # not started
    _write(config, [{"step": 3, "index": 0}, {"step": 4, "index": 0}])
    assert step_progress(config, 3, 4) == (1, False) and intervals_seen(config, 3, 4) == 1
    # one interval, then a drain: the step ended after 1 of its 3 intervals
    _write(config, [{"step": 4, "index": 0}, {"step": 5, "in_flight": 3}])
    assert step_progress(config, 3, 4) == (1, True)

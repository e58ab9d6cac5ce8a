"""The suite's timeline: one line per test when asked for, nothing otherwise, and a summary
that shows an idle worker and the module that cost the most."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support import timeline


def test_nothing_is_written_unless_the_environment_asks(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(timeline.ENV, raising=False)
    with timeline.recorded("tests/x.py::test_a", "gw0"):
        pass
    assert list(tmp_path.iterdir()) == []


def test_a_test_and_the_children_it_reaped_are_recorded(tmp_path, monkeypatch) -> None:
    path = tmp_path / "timeline.jsonl"
    monkeypatch.setenv(timeline.ENV, str(path))
    with timeline.recorded("tests/x.py::test_a", "gw1"):
        subprocess.run([sys.executable, "-c", "sum(range(3_000_000))"], check=True)
    (line,) = [json.loads(text) for text in path.read_text().splitlines()]
    assert line["nodeid"] == "tests/x.py::test_a" and line["worker"] == "gw1"
    assert line["end"] >= line["start"]
    assert line["cpu_children_s"] > 0  # the child's CPU, counted once it was reaped


def test_the_summary_ranks_modules_by_wall_time_and_shows_idle_workers() -> None:
    rows = [
        {"nodeid": "a.py::t1", "worker": "gw0", "start": 0, "end": 10, "cpu_self_s": 1,
         "cpu_children_s": 5},
        {"nodeid": "a.py::t2", "worker": "gw0", "start": 10, "end": 100, "cpu_self_s": 1,
         "cpu_children_s": 0},
        {"nodeid": "b.py::t1", "worker": "gw1", "start": 0, "end": 25, "cpu_self_s": 2,
         "cpu_children_s": 0},
    ]  # fmt: skip
    text = timeline.summary(rows)
    assert "session 100 s, 3 tests" in text
    assert "gw0: busy 100 s (100%)" in text and "gw1: busy 25 s (25%)" in text
    modules = [line.split()[-1] for line in text.splitlines() if line.strip().endswith(".py")]
    assert modules == ["a.py", "b.py"]

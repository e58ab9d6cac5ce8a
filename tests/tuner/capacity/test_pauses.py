"""The bench's pauses: each process's probe writes them, the tuner places them in a window,
and the collector is tuned once start-up is done (checked in a child process, since the
collector's settings are the whole interpreter's)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from model_server.pauses import THRESHOLDS
from tuner.capacity.pauses import PauseLog, hit_by

CHILD = """
import gc, json, sys
from model_server import pauses
probe = pauses.watch("service")
tuned = pauses.tune_collector()
junk = [[i] for i in range(300_000)]  # enough to be collected slowly
gc.collect()
state = {"frozen": gc.get_freeze_count(), "thresholds": gc.get_threshold()}
print(json.dumps({"tuned": tuned, **state}))
"""


def run_child(tmp_path: Path, tuning: str) -> dict:
    log = tmp_path / f"pauses-{tuning}.jsonl"
    out = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={"TUNER_PAUSE_LOG": str(log), "TUNER_GC_TUNING": tuning, "PATH": "/usr/bin"},
        cwd=Path(__file__).parents[3],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(out.stdout)
    result["lines"] = [json.loads(line) for line in log.read_text().splitlines()]
    return result


def test_the_collector_is_frozen_and_its_pauses_reported(tmp_path: Path) -> None:
    tuned = run_child(tmp_path, "1")
    assert tuned["tuned"] and tuned["frozen"] > 0 and tuned["thresholds"] == list(THRESHOLDS)
    assert any(line["p"] == "service" and line["kind"] == "gc2" for line in tuned["lines"])
    assert all(line["ms"] >= 2.0 for line in tuned["lines"])
    default = run_child(tmp_path, "0")
    assert not default["tuned"] and default["frozen"] == 0 and default["thresholds"][0] == 700
    assert THRESHOLDS[0] > 700  # tuned, young collections are rarer than by default


def test_a_window_knows_the_longest_pause_of_each_process(tmp_path: Path) -> None:
    path = tmp_path / "pauses.jsonl"
    now = time.monotonic()
    lines = [
        {"p": "service", "pid": 1, "t": now + 1.0, "ms": 95.0, "kind": "gc2"},
        {"p": "service", "pid": 1, "t": now + 2.0, "ms": 12.0, "kind": "loop"},
        {"p": "model_server", "pid": 2, "t": now + 9.0, "ms": 60.0, "kind": "gc2"},  # after
        {"p": "tuner", "pid": 3, "t": now + 1.5, "ms": 40.0, "kind": "gc2"},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"torn')
    log = PauseLog(path)
    longest = log.longest(now, now + 3.0)
    assert longest == {"service": 95.0, "tuner": 40.0}
    lag = {"p": "load_generator", "pid": 4, "t": now + 1.2, "ms": 300.0, "kind": "loop"}
    with path.open("a") as f:
        f.write("\n" + json.dumps(lag) + "\n")
    assert log.longest(now, now + 3.0)["load_generator"] == 300.0
    assert "load_generator" not in log.longest(now, now + 3.0, stalls_only=True)  # a lag
    assert log.longest(now, now + 3.0, stalls_only=True)["service"] == 95.0  # a collection
    assert hit_by(longest, 10.0, excess_ms=50.0) == "a 95 ms pause of the service hit the window"
    assert hit_by({"tuner": 400.0}, 10.0, excess_ms=0.0) is None  # it delays no request
    assert hit_by(longest, 100.0, excess_ms=0.0) is None


def test_a_pause_explains_only_a_latency_failure_it_is_as_long_as() -> None:
    longest = {"service": 30.0, "model_server": 20.0}
    assert hit_by(longest, 10.0, excess_ms=25.0) == "a 30 ms pause of the service hit the window"
    assert hit_by(longest, 10.0, excess_ms=45.0) is None  # over the SLO by more than it lasted
    assert hit_by(longest, 10.0, excess_ms=None) is None  # failed on errors or the rate offered


def test_a_study_s_pause_log_is_set_for_its_children_and_restored(tmp_path: Path) -> None:
    import gc
    import os

    from tuner.capacity.pauses import pause_log

    before = os.environ.get("TUNER_PAUSE_LOG")
    with pause_log(tmp_path / "p" / "pauses.jsonl") as log:
        assert os.environ["TUNER_PAUSE_LOG"] == str(tmp_path / "p" / "pauses.jsonl")
        assert gc.get_freeze_count() > 0  # the tuner's own start-up objects
        assert log.read() == []
    assert os.environ.get("TUNER_PAUSE_LOG") == before
    assert gc.get_freeze_count() == 0

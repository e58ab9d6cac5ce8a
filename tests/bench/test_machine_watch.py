"""The bench's machine watch counts what runs outside the bench, and only that."""

from __future__ import annotations

import subprocess
import time

import psutil
import pytest

from bench.machine_watch import MachineWatch
from tuner.process import stop_processes

pytestmark = pytest.mark.alone(seconds=4)  # two busy loops for 3 s: not beside tests that measure
TOKEN = "machine-watch-test-loop"


def _kill_detached() -> None:
    detached = [
        p for p in psutil.process_iter(["cmdline"]) if TOKEN in " ".join(p.info["cmdline"] or [])
    ]
    stop_processes(detached, timeout_s=5)


def test_processes_outside_the_bench_are_counted_and_its_own_are_not(tmp_path) -> None:
    ours = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    # The shell exits at once: its busy loop is reparented, no longer a process of ours.
    loop = f"while :; do :; done; : {TOKEN}"
    subprocess.run(["sh", "-c", f"timeout 4 sh -c '{loop}' &"], check=True)
    try:
        with MachineWatch(tmp_path / "machine.jsonl", interval_s=0.5) as watch:
            started = time.time()
            time.sleep(3.0)
            ended = time.time()
    finally:
        ours.kill()
        ours.wait()
        _kill_detached()
    others: dict[str, float] = {}
    for sample in watch.samples:
        for name, seconds in sample["others_cpu_s"].items():
            others[name] = others.get(name, 0.0) + seconds
    assert others.get("sh", 0.0) >= 0.2, others
    assert "yes" not in others and "timeout" not in others
    summary = watch.summary(started, ended)
    assert summary is not None and summary["samples"] >= 4
    assert summary["speed_ms_median"] > 0 and summary["steal_s"] >= 0
    assert summary["others_cpu_percent"] >= 5
    lines = (tmp_path / "machine.jsonl").read_text().splitlines()
    assert len(lines) == len(watch.samples)
    assert watch.summary(ended + 60, ended + 120) is None


def test_a_spell_shorter_than_the_window_is_counted_though_the_median_hides_it(tmp_path) -> None:
    watch = MachineWatch(tmp_path / "machine.jsonl")  # never started: its samples given here
    speeds = [14.0] * 20 + [28.0, 27.0, 26.0] + [14.5] * 7  # a 3-s spell in a 10-s window
    watch.samples = [
        {"t": float(t), "speed_ms": ms, "steal_s": 0.0, "others_cpu_s": {}}
        for t, ms in enumerate(speeds)
    ]
    summary = watch.summary(20.0, 29.0)
    assert summary["speed_ms_median"] == 14.5
    assert summary["slow_samples"] == 3
    assert watch.summary(0.0, 19.0)["slow_samples"] == 0

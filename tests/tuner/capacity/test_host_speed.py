"""The machine's slow spells: found from a fixed loop's CPU time, written as pauses of the host,
and a failed window they overlap is one the step runner measures again."""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable
from pathlib import Path

from model_server.pauses import PauseProbe
from tuner.capacity.host_speed import (
    MIN_ROUNDS,
    HostWatch,
    MemoryReads,
    SlowSpells,
    loop_ms,
    loop_ms_since,
    memory_ms_since,
)
from tuner.capacity.pauses import PauseLog, hit_by, pause_log


def confirmed(series: list[float]) -> list[int]:
    spells = SlowSpells(ratio=1.4, rounds=40)
    return [spells.add(ms) for ms in series]


def test_a_steady_machine_has_no_spell() -> None:
    assert sum(confirmed([1.0, 1.05, 0.98, 1.1, 1.2] * 20)) == 0


def test_one_slow_round_is_not_a_spell_two_in_a_row_are() -> None:
    steady = [1.0] * MIN_ROUNDS
    assert confirmed([*steady, 2.0, 1.0, 1.0]) == [0] * MIN_ROUNDS + [0, 0, 0]
    # the second slow round confirms both, each one after adds itself, a normal round ends it
    assert confirmed([*steady, 2.0, 1.9, 2.1, 1.0, 1.9]) == [0] * MIN_ROUNDS + [0, 2, 1, 0, 0]


def test_nothing_is_slow_before_there_is_a_baseline() -> None:
    assert confirmed([9.0] * (MIN_ROUNDS - 1) + [1.0]) == [0] * MIN_ROUNDS


def test_a_lasting_change_becomes_the_baseline() -> None:
    marks = confirmed([1.0] * 40 + [2.0] * 60)
    assert marks[41] == 2 and marks[42] == 1  # a spell at first...
    assert marks[-1] == 0  # ...until most of the rounds kept are at the new speed


def test_the_loop_is_timed_in_the_thread_s_own_cpu_time() -> None:
    assert 0.0 < loop_ms(2_000) < loop_ms(200_000)


def test_memory_reads_are_timed_in_the_thread_s_own_cpu_time() -> None:
    few, many = MemoryReads(mb=16, reads=1_000), MemoryReads(mb=16, reads=400_000)
    assert 0.0 < min(few() for _ in range(3)) < min(many() for _ in range(3))


def test_a_spell_is_written_as_a_pause_of_the_host_and_explains_a_window(tmp_path: Path) -> None:
    path = tmp_path / "pauses.jsonl"
    series = iter([1.0] * MIN_ROUNDS + [2.0, 2.0, 2.0] + [1.0] * 1000)
    started = time.monotonic()
    with HostWatch(PauseProbe("host", str(path)), period_s=0.01, measure=lambda: next(series)):
        deadline = time.monotonic() + 10.0
        while (
            time.monotonic() < deadline
            and len(path.read_text().splitlines() if path.exists() else []) < 2
        ):
            time.sleep(0.01)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [(line["p"], line["kind"], line["ms"]) for line in lines] == [
        ("host", "slow_host", 20.0),
        ("host", "slow_host", 10.0),
    ]
    longest = PauseLog(path).longest(started, time.monotonic())
    assert longest == {"host": 20.0}
    assert hit_by(longest, 10.0, excess_ms=None) == (  # a spell explains any failure
        "the machine itself ran slow for 20 ms of the window (a fixed loop took over 1.4x its "
        "usual CPU time)"
    )


def test_the_study_s_pause_log_runs_the_watch_and_stops_it(tmp_path: Path) -> None:
    def watching() -> bool:
        return any(t.name == "host-watch" for t in threading.enumerate())

    with pause_log(tmp_path / "pauses.jsonl"):
        assert watching()
    deadline = time.monotonic() + 3.0
    while watching() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not watching()


def test_the_running_watch_gives_the_machine_s_speed_since_a_moment(tmp_path: Path) -> None:
    """A lasting change of speed is no spell, yet it moves every capacity: each trial records
    the median loop time over its own search."""
    rounds: queue.Queue[float] = queue.Queue()  # each round waits for the test's figure

    def kept(watch: HostWatch, n: int) -> None:
        deadline = time.monotonic() + 10.0
        while len(watch._history) < n and time.monotonic() < deadline:
            time.sleep(0.005)

    assert loop_ms_since(0.0) is None and memory_ms_since(0.0) is None  # no watch running
    probe = PauseProbe("host", str(tmp_path / "pauses.jsonl"))
    memory = iter([0.5, 0.7] * 2000)  # the memory reads, beside every loop
    with HostWatch(
        probe, period_s=0.001, measure=rounds.get, memory=lambda: memory.__next__
    ) as watch:
        for _ in range(MIN_ROUNDS + 2):
            rounds.put(1.0)
        kept(watch, MIN_ROUNDS + 2)
        assert loop_ms_since(0.0) == 1.0
        assert memory_ms_since(0.0) == 0.6  # the median of its own rounds
        since = time.monotonic()
        for _ in range(MIN_ROUNDS - 1):
            rounds.put(3.0)
        kept(watch, 2 * MIN_ROUNDS + 1)
        assert loop_ms_since(since) is None  # too few rounds since then for a figure
        rounds.put(3.0)
        kept(watch, 2 * MIN_ROUNDS + 2)
        assert loop_ms_since(since) == 3.0
        assert loop_ms_since(0.0) == 1.0  # still more rounds at 1.0 than at 3.0
        for _ in range(1000):  # until the watch is stopped
            rounds.put(3.0)
    assert loop_ms_since(0.0) is None  # the watch stopped with the run
    assert memory_ms_since(0.0) is None


def test_a_memory_probe_without_room_leaves_the_loop_watched(tmp_path: Path) -> None:
    """The 64 MB buffer is allocated in the watch's thread: a MemoryError there must not end the
    thread, or the slow spells would go unseen for the rest of the run."""

    def no_room() -> Callable[[], float]:
        raise MemoryError

    probe = PauseProbe("host", str(tmp_path / "pauses.jsonl"))
    with HostWatch(probe, period_s=0.001, measure=lambda: 1.0, memory=no_room) as watch:
        deadline = time.monotonic() + 10.0
        while len(watch._history) < MIN_ROUNDS and time.monotonic() < deadline:
            time.sleep(0.005)
        assert loop_ms_since(0.0) == 1.0
        assert memory_ms_since(0.0) is None

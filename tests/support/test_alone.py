"""The room `alone` tests share: one kind of test at a time, any number of that kind, and a
waiting `alone` test is not starved by a stream of others."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from tests.support import alone


def hold(directory: Path, is_alone: bool, entered: threading.Event, release: threading.Event):
    def run() -> None:
        with alone.turn(directory, is_alone):
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_alone_tests_share_the_room_and_keep_the_others_out(tmp_path: Path) -> None:
    release = threading.Event()
    first, second, other = threading.Event(), threading.Event(), threading.Event()
    threads = [hold(tmp_path, True, first, release), hold(tmp_path, True, second, release)]
    assert first.wait(5) and second.wait(5)  # two alone tests side by side
    threads.append(hold(tmp_path, False, other, release))
    assert not other.wait(0.5)  # a test of the other kind waits
    release.set()
    assert other.wait(5)  # and enters once they have left
    for thread in threads:
        thread.join(5)


def test_a_waiting_alone_test_stops_new_others_from_entering(tmp_path: Path) -> None:
    release_first = threading.Event()
    first, lone, late = threading.Event(), threading.Event(), threading.Event()
    threads = [hold(tmp_path, False, first, release_first)]
    assert first.wait(5)
    release_lone = threading.Event()
    threads.append(hold(tmp_path, True, lone, release_lone))
    time.sleep(0.3)  # the alone test is waiting now
    threads.append(hold(tmp_path, False, late, release_lone))
    assert not late.wait(0.5)  # kept out although only others are inside
    release_first.set()
    assert lone.wait(5) and not late.is_set()
    release_lone.set()
    assert late.wait(5)
    for thread in threads:
        thread.join(5)


class Item:
    """What session_order reads of a pytest item: its module and its marks."""

    def __init__(self, path: str, alone_s: float | None = None, slow: bool = False) -> None:
        self.path, self.name = Path(path), f"{path}:{alone_s}:{slow}"
        self.marks = {}
        if alone_s is not None:
            self.marks[alone.MARK] = pytest.mark.alone(seconds=alone_s).mark
        if slow:
            self.marks["slow"] = pytest.mark.slow.mark

    def get_closest_marker(self, name: str):
        return self.marks.get(name)


def test_the_session_runs_alone_tests_longest_module_first_then_slow_modules() -> None:
    items = [
        Item("plain.py"),
        Item("short_alone.py", alone_s=4),
        Item("study.py", slow=True),
        Item("long_alone.py", alone_s=60),
        Item("two_alone.py", alone_s=37),
        Item("two_alone.py", alone_s=17),
        Item("studies.py", slow=True),
        Item("studies.py", slow=True),
    ]
    alone.session_order(items)
    assert [(str(i.path), i.marks.get(alone.MARK) is not None) for i in items] == [
        ("long_alone.py", True),
        ("two_alone.py", True),
        ("two_alone.py", True),
        ("short_alone.py", True),
        ("studies.py", False),
        ("studies.py", False),
        ("study.py", False),
        ("plain.py", False),
    ]

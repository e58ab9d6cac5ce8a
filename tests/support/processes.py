"""Reading other processes' command lines without tripping over zombies.

An orphan of a SIGKILLed tuner is reparented to PID 1, and on these machines PID 1 reaps
its children lazily: for a while the orphan is a zombie, whose command line psutil cannot
read. A zombie is not running for any purpose a test has.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable

import psutil


def live_command_lines(processes: Iterable[psutil.Process]) -> list[str]:
    """The command line of each process still running (zombies and vanished ones left out)."""
    lines = []
    for process in processes:
        with contextlib.suppress(psutil.Error):
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                lines.append(" ".join(process.cmdline()))
    return lines


def any_running(processes: Iterable[psutil.Process], word: str) -> bool:
    """True when a running process among `processes` has `word` in its command line."""
    return any(word in line for line in live_command_lines(processes))

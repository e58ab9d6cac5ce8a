"""Host-wide reservations of model-server ports, respected by every tuner of every study.

A model server's ports are free between its trials, yet taken: its tuner restarts the server on
them a moment later. So a tuner reserves the ports it chose for its whole run, and no tuner on
the host picks a reserved one: port P is reserved by `flock` on the file `ports/P` in the
runtime directory (tuner/coordination/runtime_dir.py), released by the kernel when the tuner ends,
SIGKILL included. The file also keeps the name of the study slot whose stored ports include P, so a
tuner of another study does not pick P while that study is not running either; a slot that
moves off a port clears its name. (Names of studies never run again stay until the runtime
directory is cleared, at the latest by a reboot: a few ports out of thousands.)

Only tuners of this user see these files; a port another user's process takes is a port taken
by an unrelated process, which the tuner chooses again (tuner/measure/server_start.py).
"""

from __future__ import annotations

import contextlib
import fcntl
from typing import IO

from tuner.coordination.runtime_dir import runtime_dir


class PortReservations:
    """The ports one slot (`owner`, tuner/coordination/slot.py) holds on this host."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._dir = runtime_dir("ports")
        self._held: dict[int, IO[str]] = {}

    def reserve(self, port: int) -> bool:
        """True when this slot holds `port` now: it did already, or no running tuner holds it
        and no other slot has it among its stored ports."""
        if port in self._held:
            return True
        handle = self._locked(port)
        if handle is None:
            return False
        if self._recorded(handle) not in ("", self.owner):
            _unlock(handle)
            return False
        _record(handle, self.owner)
        self._held[port] = handle
        return True

    def release(self, port: int) -> None:
        """Give `port` up for good (this slot moved off it): unlocked and no longer its own."""
        handle = self._held.pop(port, None) or self._locked(port)
        if handle is None:
            return
        if self._recorded(handle) == self.owner:
            _record(handle, "")
        _unlock(handle)

    def close(self) -> None:
        """Unlock every port, keeping them recorded as this slot's for its next run."""
        for handle in self._held.values():
            _unlock(handle)
        self._held.clear()

    def _locked(self, port: int) -> IO[str] | None:
        handle = (self._dir / str(port)).open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return None
        return handle

    @staticmethod
    def _recorded(handle: IO[str]) -> str:
        handle.seek(0)
        return handle.read().strip()

    def __enter__(self) -> PortReservations:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _record(handle: IO[str], owner: str) -> None:
    handle.truncate(0)
    handle.write(owner)
    handle.flush()


def _unlock(handle: IO[str]) -> None:
    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
    handle.close()

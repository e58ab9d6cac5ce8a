"""A tuner's place on its host: its own working directory and its own model-server ports.

Several tuners of one study may run on one host (on a large machine, or in tests), each with
the study's config or a copy of its own, with the same `study.workdir` or not. Each needs a
working directory the others do not clean or mark, and ports the others do not pick, even
between trials when its model server is stopped and its ports look free. So a tuner takes the
lowest free *slot* of the study on this host: slot N is held by `flock` on `slot-N.lock` in a
directory of the study's own under the host's runtime directory (tuner/coordination/runtime_dir.py),
keyed by the study's storage URL and name, for the tuner's whole life; the kernel releases it when
the tuner ends, SIGKILL included. The slot, not the directory, names the ports stored with the
study (tuner/servers/study_ports.py), so tuners with different workdirs never share them.

Slot 0 works in the study's working directory itself, so a study run by one tuner per host
looks exactly as it did before slots; slot N > 0 works in `<study workdir>/tuner-N`. A tuner
restarted after a crash takes the lowest free slot again, usually the one it left.
"""

from __future__ import annotations

import fcntl
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tuner.coordination.runtime_dir import runtime_dir
from tuner.errors import TunerError

MAX_SLOTS = 256


def study_key(storage: str, study_name: str) -> str:
    """A short, stable name for one study on this host (the storage URL holds a password
    at times: only its hash is written anywhere)."""
    return hashlib.sha256(f"{storage}\x00{study_name}".encode()).hexdigest()[:16]


@dataclass
class Slot:
    index: int
    workdir: Path
    study: str  # the study's key (study_key)
    _file: IO[str]

    @property
    def owner(self) -> str:
        """Who holds this slot's ports in the host's port reservations."""
        return f"{self.study}#{self.index}"

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def take_slot(study_workdir: Path, study: str) -> Slot:
    """The lowest slot of the study (`study_key`) on this host that no running tuner holds."""
    locks = runtime_dir("slots", study)
    for index in range(MAX_SLOTS):
        handle = (locks / f"slot-{index}.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        workdir = study_workdir if index == 0 else study_workdir / f"tuner-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        return Slot(index, workdir, study, handle)
    raise TunerError(f"{MAX_SLOTS} tuners of this study already run on this host; stop one first")

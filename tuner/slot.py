"""A tuner's place on its host: its own working directory and its own model-server ports.

Several tuners of one study may run on one host (on a large machine, or in tests). Each needs
a working directory the others do not clean or mark, and ports the others do not pick, even
between trials when its model server is stopped and its ports look free. A tuner takes the
lowest free *slot* of the study on this host: slot N is held by `flock` on
`<study workdir>/slot-N.lock` for the tuner's whole life, and the kernel releases it when the
tuner ends, SIGKILL included. Slot 0 is the study's working directory itself, so a study run
by one tuner per host looks exactly as it did before slots; slot N > 0 works in
`<study workdir>/tuner-N`. A tuner restarted after a crash takes the slot it left, finds what
it left behind there (tuner/leftovers.py) and reuses the ports stored for that slot.
"""

from __future__ import annotations

import fcntl
from dataclasses import dataclass
from pathlib import Path
from typing import IO

MAX_SLOTS = 256


@dataclass
class Slot:
    index: int
    workdir: Path
    _file: IO[str]

    def release(self) -> None:
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()

    def __enter__(self) -> Slot:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def take_slot(study_workdir: Path) -> Slot:
    """The lowest slot of the study on this host that no running tuner holds."""
    study_workdir.mkdir(parents=True, exist_ok=True)
    for index in range(MAX_SLOTS):
        handle = (study_workdir / f"slot-{index}.lock").open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        workdir = study_workdir if index == 0 else study_workdir / f"tuner-{index}"
        workdir.mkdir(parents=True, exist_ok=True)
        return Slot(index, workdir, handle)
    raise OSError(f"{MAX_SLOTS} tuners of this study already run in {study_workdir}")

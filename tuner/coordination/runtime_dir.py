"""Where tuners on one host meet: the directory of their host-wide locks (slots, ports).

A study's working directory is a setting, so two tuners of one study may each have their own;
what they must not share (a slot, a port) is a resource of the host, so its locks live in one
place every tuner of the user finds whatever its config says: `$TUNER_RUNTIME_DIR`, else
`tuner-<uid>` in the system's temporary directory (`/tmp/tuner-0` for root). It holds only
empty or one-line lock files, `flock`ed by the tuners that hold them; a reboot may clear it.
Tests point `TUNER_RUNTIME_DIR` at a temporary directory of their own.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from tuner.errors import TunerError

RUNTIME_ENV = "TUNER_RUNTIME_DIR"


def runtime_dir(*parts: str) -> Path:
    """The runtime directory (or `parts` below it), created when missing."""
    configured = os.environ.get(RUNTIME_ENV)
    base = Path(configured) if configured else _default_dir()
    path = base.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise TunerError(
            f"cannot create {path} ({exc.strerror}), where tuners on this host share their slot "
            f"and port locks; set {RUNTIME_ENV} to a directory you can write"
        ) from None
    return path


def _default_dir() -> Path:
    """`tuner-<uid>` in the temporary directory, private to this user. A directory of that name
    another user made first would let them hold our locks: refuse it in one sentence."""
    path = Path(tempfile.gettempdir()) / f"tuner-{os.getuid()}"
    path.mkdir(mode=0o700, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise TunerError(
            f"{path} is not a directory of this user, so tuners on this host cannot share their "
            f"slot and port locks there; remove it, or set {RUNTIME_ENV} to a directory of yours"
        )
    return path

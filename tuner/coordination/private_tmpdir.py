"""A temporary directory of the tuner's own, for it and every process it starts.

The processes a tuner starts write temporary files: the embedded model server's scratch
directory, the browser kaleido drives for PNGs (its profile and `org.chromium.Chromium.*`
files), Locust's. A tuner that ends normally stops them and they clean up; one stopped by
SIGKILL or the OOM killer cannot, and their files stay in /tmp for good. So the tuner points
TMPDIR (which its children inherit) at `tuner.<pid>` in the temporary directory it was given,
removes it when it ends, and the next tuner finds the directories of tuners that are gone and
removes them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from tuner.coordination.runtime_dir import RUNTIME_ENV, runtime_dir

log = logging.getLogger("tuner")

PREFIX = "tuner."
OWNER_FILE = "owner"
# Chromium puts a unix socket at TMPDIR/org.chromium.Chromium.XXXXXX/SingletonSocket (45 more
# bytes) and a socket's path must stay under 108: with a longer TMPDIR it cannot start, and
# kaleido then waits for it for good. A TMPDIR that long is left as it is.
MAX_PATH = 60


def _owner_alive(path: Path) -> bool:
    """Whether the tuner named by `tuner.<pid>` and its owner file (its start time, which with
    the pid survives pid reuse) is still running."""
    try:
        process = psutil.Process(int(path.name.removeprefix(PREFIX)))
        return (path / OWNER_FILE).read_text() == f"{process.create_time():.3f}"
    except (ValueError, OSError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def remove_orphans(base: Path) -> list[Path]:
    """This user's private directories under `base` whose tuner is gone, removed."""
    removed = []
    for path in base.glob(f"{PREFIX}*"):
        if not (path.name.removeprefix(PREFIX).isdigit() and (path / OWNER_FILE).is_file()):
            continue  # not one of ours: a user's `tuner.backup` is never touched
        with contextlib.suppress(OSError):
            if path.stat().st_uid == os.getuid() and not _owner_alive(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def private_tmpdir() -> Iterator[Path]:
    """TMPDIR is this tuner's own directory while the block runs; removed after. The host's
    runtime directory (tuner/coordination/runtime_dir.py) is pinned first: it lives in the temporary
    directory too, and every tuner of the host must keep finding the same one."""
    base = Path(tempfile.gettempdir())
    me = psutil.Process()
    path = base / f"{PREFIX}{me.pid}"
    if len(str(path)) > MAX_PATH:
        log.info("event=private_tmpdir_skipped reason=path_too_long tmpdir=%s", base)
        yield base
        return
    pinned = RUNTIME_ENV not in os.environ
    if pinned:
        os.environ[RUNTIME_ENV] = str(runtime_dir())
    remove_orphans(base)
    path.mkdir(mode=0o700, exist_ok=True)
    (path / OWNER_FILE).write_text(f"{me.create_time():.3f}")
    previous_env, previous_default = os.environ.get("TMPDIR"), tempfile.tempdir
    os.environ["TMPDIR"] = tempfile.tempdir = str(path)
    try:
        yield path
    finally:
        tempfile.tempdir = previous_default
        if previous_env is None:
            os.environ.pop("TMPDIR", None)
        else:
            os.environ["TMPDIR"] = previous_env
        if pinned:
            os.environ.pop(RUNTIME_ENV, None)
        shutil.rmtree(path, ignore_errors=True)

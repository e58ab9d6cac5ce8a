"""A temporary directory of the tuner's own, for it and every process it starts.

The processes a tuner starts write temporary files: the embedded model server's scratch
directory, the browser kaleido drives for PNGs (its profile and `org.chromium.Chromium.*`
files), Locust's. A tuner that ends normally stops them and they clean up; one stopped by
SIGKILL or the OOM killer cannot, and their files stay in /tmp for good. So the tuner points
TMPDIR (which its children inherit) at `tuner-tmp-<pid>-<start ms>` in the temporary directory
it was given, removes it when it ends, and the next tuner finds the directories of tuners that
are gone (pid and start time, which together survive pid reuse) and removes them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil

from tuner.runtime_dir import RUNTIME_ENV, runtime_dir

PREFIX = "tuner-tmp-"


def _name(pid: int, started: float) -> str:
    return f"{PREFIX}{pid}-{round(started * 1000)}"


def _owner_alive(path: Path) -> bool:
    pid, _, started_ms = path.name.removeprefix(PREFIX).partition("-")
    try:
        process = psutil.Process(int(pid))
        return round(process.create_time() * 1000) == int(started_ms)
    except (ValueError, psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def remove_orphans(base: Path) -> list[Path]:
    """This user's private directories under `base` whose tuner is gone, removed."""
    removed = []
    for path in base.glob(f"{PREFIX}*"):
        with contextlib.suppress(OSError):
            if path.is_dir() and path.stat().st_uid == os.getuid() and not _owner_alive(path):
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


@contextlib.contextmanager
def private_tmpdir() -> Iterator[Path]:
    """TMPDIR is this tuner's own directory while the block runs; removed after. The host's
    runtime directory (tuner/runtime_dir.py) is pinned first: it lives in the temporary
    directory too, and every tuner of the host must keep finding the same one."""
    base = Path(tempfile.gettempdir())
    pinned = RUNTIME_ENV not in os.environ
    if pinned:
        os.environ[RUNTIME_ENV] = str(runtime_dir())
    remove_orphans(base)
    me = psutil.Process()
    path = base / _name(me.pid, me.create_time())
    path.mkdir(mode=0o700, exist_ok=True)
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

"""A temporary directory of the build's own, for TensorFlow's AutoGraph.

Tracing a `tf.function` makes AutoGraph write each converted function as a module named
`__autograph_generated_file*.py` in the temporary directory and import it; TensorFlow deletes
the modules at exit (tensorflow/python/autograph/pyct/loader.py), but Python has written their
bytecode beside them by then, and `$TMPDIR/__pycache__` keeps it after every build. Building
inside a directory of our own, removed after, leaves nothing behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def own_tempdir() -> Iterator[Path]:
    """Point `tempfile` at a fresh directory for the block, then restore and remove it."""
    previous = tempfile.tempdir
    with tempfile.TemporaryDirectory(prefix="tuner-build-") as scratch:
        tempfile.tempdir = scratch
        try:
            yield Path(scratch)
        finally:
            tempfile.tempdir = previous

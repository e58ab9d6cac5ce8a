"""Ctrl-C and SIGTERM as a KeyboardInterrupt that is never lost.

Python runs a signal's handler in the main thread between two bytecodes, wherever they are.
When they are in a garbage-collector callback (the tuner's pause probe has one,
model_server/pauses.py) or a `__del__` method, the KeyboardInterrupt the handler raises
escapes into the interpreter, which prints "Exception ignored" and drops it: the tuner went on
as if no signal had come, and finished its study (`make test` saw a SIGTERM lost so). There
the handler raises nothing and sends the signal again a moment later, from a thread, once
the callback is over.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType, FunctionType

REDELIVER_S = 0.01  # a collection's callbacks are done in far less than this
SIGNALS = (signal.SIGINT, signal.SIGTERM)


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """A signal handler: KeyboardInterrupt, or the signal again soon when raising it now would
    be dropped (inside a gc callback or a `__del__`)."""
    if _where_exceptions_are_dropped(frame):
        threading.Timer(REDELIVER_S, os.kill, (os.getpid(), signum)).start()
        return
    raise KeyboardInterrupt


@contextlib.contextmanager
def interrupts_raised() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM (what `docker stop` and Kubernetes send) raise
    KeyboardInterrupt in the main thread; the previous handlers come back after. A SIGINT the
    process was started ignoring (a background job of a script) stays ignored, as Python
    leaves it."""
    ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    previous = {
        sig: signal.signal(sig, raise_interrupt)
        for sig in SIGNALS
        if not (sig == signal.SIGINT and ignored)
    }
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def ctrl_c_kept() -> Iterator[None]:
    """For a library caller (no CLI around it): within the block, a Ctrl-C that lands in a gc
    callback (the tuner's pause log adds one) is not lost, as it would be with Python's own
    SIGINT handler. Only that default handler is replaced, only in the main thread; SIGTERM
    is left as it is."""
    if (
        threading.current_thread() is not threading.main_thread()
        or signal.getsignal(signal.SIGINT) is not signal.default_int_handler
    ):
        yield
        return
    signal.signal(signal.SIGINT, raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _where_exceptions_are_dropped(frame: FrameType | None) -> bool:
    """Is the main thread inside a gc callback or a `__del__`, as far up as its stack goes?"""
    codes = set()
    for callback in gc.callbacks:
        function = getattr(callback, "__func__", callback)
        if isinstance(function, FunctionType):
            codes.add(function.__code__)
    while frame is not None:
        if frame.f_code in codes or frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False

"""Ctrl-C and SIGTERM as a KeyboardInterrupt that is never lost.

Python runs a signal's handler in the main thread between two bytecodes, wherever they are.
When they are in a garbage-collector callback (the tuner's pause probe has one,
model_server/pauses.py) or a `__del__` method, the KeyboardInterrupt the handler raises
escapes into the interpreter, which prints "Exception ignored" and drops it: the tuner went on
as if no signal had come, and finished its study (`make test` saw a SIGTERM lost so). There
the handler raises nothing and sends the signal again a moment later, from a thread, once
the callback is over. Every change of a handler here goes through one swap that puts the
previous handler back, including the clean-up's hold on both signals (`signals_held`).
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import threading
from collections.abc import Iterator
from types import FrameType, FunctionType
from typing import Any

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
    wanted = {sig: raise_interrupt for sig in SIGNALS if not (sig == signal.SIGINT and ignored)}
    with _handlers(wanted):
        yield


@contextlib.contextmanager
def ctrl_c_kept() -> Iterator[None]:
    """For a library caller (no CLI around it): within the block, a Ctrl-C that lands in a gc
    callback (the tuner's pause log adds one) is not lost, as it would be with Python's own
    SIGINT handler. Only that default handler is replaced, only in the main thread; SIGTERM
    is left as it is."""
    default = signal.getsignal(signal.SIGINT) is signal.default_int_handler
    with _handlers({signal.SIGINT: raise_interrupt} if _in_main_thread() and default else {}):
        yield


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Ignore Ctrl-C and SIGTERM while the block runs (main thread only), then restore: a
    second Ctrl-C during the clean-up after the first must not leave a server behind."""
    with _handlers({sig: signal.SIG_IGN for sig in SIGNALS} if _in_main_thread() else {}):
        yield


@contextlib.contextmanager
def _handlers(wanted: dict[int, Any]) -> Iterator[None]:
    """Each signal's handler set as `wanted` says (signal.signal: main thread only), and the
    previous one put back after."""
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


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

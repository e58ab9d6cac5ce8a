"""A signal that lands in a garbage-collector callback still interrupts: in a real process,
whose gc callback sends the signal to itself and goes on running Python code, so the handler
runs inside the callback, where a KeyboardInterrupt raised is dropped by the collector."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, time
    from tuner.interrupts import interrupts_raised, raise_interrupt

    sent = []

    def callback(phase, info):
        if phase == "stop" and not sent:
            sent.append(1)
            os.kill(os.getpid(), {sig})
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    gc.callbacks.append(callback)
    {install}
    try:
        gc.collect()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("not interrupted", flush=True)
    """
)

OURS = "held = interrupts_raised(); held.__enter__()"
PLAIN = "signal.signal({sig}, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt))"


def run(sig: signal.Signals, install: str) -> subprocess.CompletedProcess:
    code = SCRIPT.format(sig=int(sig), install=install.format(sig=int(sig)))
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_gc_callback_still_interrupts(sig: signal.Signals) -> None:
    done = run(sig, OURS)
    assert (done.returncode, done.stdout.strip()) == (130, "interrupted"), done.stderr
    assert "Exception ignored" not in done.stderr


def test_a_plain_raising_handler_loses_it_there() -> None:
    # What the module is for: the same process with a handler that only raises goes on.
    done = run(signal.SIGTERM, PLAIN)
    assert (done.returncode, done.stdout.strip()) == (0, "not interrupted"), done.stderr
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr


def test_outside_a_callback_the_handler_raises_at_once() -> None:
    from tuner.interrupts import raise_interrupt

    with pytest.raises(KeyboardInterrupt):
        raise_interrupt(signal.SIGTERM, sys._getframe())

"""A signal that lands in a garbage-collector callback or a `__del__` still interrupts: in a
real process, whose callback (or finalizer) sends the signal to itself and goes on running
Python code, so the handler runs inside it, where a KeyboardInterrupt raised is dropped."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    import gc, os, signal, sys, time
    from tuner.interrupts import ctrl_c_kept, interrupts_raised

    # Python's own SIGINT handler, as in a process started from a terminal (a background
    # job's child, as under CI, starts with SIGINT ignored, and keeps it so).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sent = []

    def callback(phase, info):
        if phase == "stop" and not sent:
            sent.append(1)
            os.kill(os.getpid(), {sig})
            for _ in range(10_000):  # the handler runs here, inside the callback
                pass

    class Finalized:
        def __del__(self):
            callback("stop", {{}})

    {install}
    try:
        if {in_del}:
            Finalized()  # dropped at once: its __del__ runs
        else:
            gc.callbacks.append(callback)
            gc.collect()
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            time.sleep(0.01)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
    print("not interrupted", flush=True)
    """
)

OURS = "held = interrupts_raised(); held.__enter__()"
LIBRARY = "held = ctrl_c_kept(); held.__enter__()"  # what the tuner's pause log holds
PLAIN = "signal.signal({sig}, lambda signum, frame: (_ for _ in ()).throw(KeyboardInterrupt))"


def run(sig: signal.Signals, install: str, in_del: bool = False) -> subprocess.CompletedProcess:
    code = SCRIPT.format(sig=int(sig), install=install.format(sig=int(sig)), in_del=in_del)
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize("in_del", [False, True], ids=["gc_callback", "__del__"])
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_inside_a_gc_callback_still_interrupts(sig: signal.Signals, in_del) -> None:
    done = run(sig, OURS, in_del)
    assert (done.returncode, done.stdout.strip()) == (130, "interrupted"), done.stderr
    assert "Exception ignored" not in done.stderr


def test_a_library_caller_s_ctrl_c_is_kept_too() -> None:
    done = run(signal.SIGINT, LIBRARY)
    assert (done.returncode, done.stdout.strip()) == (130, "interrupted"), done.stderr


def test_only_python_s_default_sigint_handler_is_replaced_and_it_is_put_back() -> None:
    code = textwrap.dedent(
        """
        import signal
        from tuner.interrupts import ctrl_c_kept, interrupts_raised, raise_interrupt

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # started as a background job
        with ctrl_c_kept(), interrupts_raised():
            ignored = signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        signal.signal(signal.SIGINT, signal.default_int_handler)
        with ctrl_c_kept():
            inside = signal.getsignal(signal.SIGINT) is raise_interrupt
            term = signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
        after = signal.getsignal(signal.SIGINT) is signal.default_int_handler
        mine = lambda *_: None
        signal.signal(signal.SIGINT, mine)
        with ctrl_c_kept():
            kept = signal.getsignal(signal.SIGINT) is mine
        print(ignored, inside, term, after, kept)
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True"] * 5, done.stderr


@pytest.mark.parametrize("in_del", [False, True], ids=["gc_callback", "__del__"])
def test_a_plain_raising_handler_loses_it_there(in_del: bool) -> None:
    # What the module is for: the same process with a handler that only raises goes on.
    done = run(signal.SIGTERM, PLAIN, in_del)
    assert (done.returncode, done.stdout.strip()) == (0, "not interrupted"), done.stderr
    assert "Exception ignored" in done.stderr and "KeyboardInterrupt" in done.stderr


def test_outside_a_callback_the_handler_raises_at_once() -> None:
    from tuner.interrupts import raise_interrupt

    with pytest.raises(KeyboardInterrupt):
        raise_interrupt(signal.SIGTERM, sys._getframe())

"""Host-wide port reservations: one holder per port, held for the holder's life only."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tuner.servers.reservations import PortReservations

REPO = Path(__file__).resolve().parents[3]


def test_a_reserved_port_is_nobody_elses_until_released(tmp_path: Path) -> None:
    with PortReservations("a#0") as a, PortReservations("b#0") as b:
        assert a.reserve(7001)
        assert a.reserve(7001)  # already its own
        assert not b.reserve(7001)
        assert b.reserve(7002)
    with PortReservations("b#0") as b:
        assert not b.reserve(7001)  # a stopped, but 7001 is still among its stored ports
    with PortReservations("a#0") as a:
        assert a.reserve(7001)  # a's next run gets it back
        a.release(7001)  # ... and moves off it
    with PortReservations("b#0") as b:
        assert b.reserve(7001)


def test_a_killed_tuners_reservation_ends_with_it(runtime_dir: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from tuner.servers.reservations import PortReservations\n"
            "r = PortReservations('a#0')\n"
            "print(r.reserve(7101), flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "True"
        with PortReservations("a#0") as same_slot:
            assert not same_slot.reserve(7101)  # the running tuner holds it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    with PortReservations("a#0") as same_slot, PortReservations("b#0") as other:
        assert not other.reserve(7101)
        assert same_slot.reserve(7101)

"""The ports the tuner picks for its servers come from below the kernel's ephemeral range, where
no outgoing connection takes one between the pick and the server's bind."""

from __future__ import annotations

import random
import socket
from pathlib import Path

import pytest

from tuner import process
from tuner.process import ephemeral_range, free_port


def bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


@pytest.mark.skipif(ephemeral_range() is None, reason="the kernel reports no ephemeral range")
def test_a_pick_is_free_and_below_the_ephemeral_range() -> None:
    low, _ = ephemeral_range()
    ports = [free_port() for _ in range(50)]
    assert all(max(1024, low - process.BELOW_EPHEMERAL) <= p < low for p in ports)
    assert all(bindable(p) for p in ports)
    assert len(set(ports)) > 40  # drawn, not a fixed sequence


def test_seeding_the_random_module_does_not_repeat_the_picks(tmp_path: Path) -> None:
    random.seed(7)
    first = [free_port() for _ in range(5)]
    random.seed(7)
    assert [free_port() for _ in range(5)] != first


def test_a_range_with_no_room_below_leaves_the_pick_to_the_kernel(tmp_path, monkeypatch) -> None:
    start_at_1024 = tmp_path / "range"
    start_at_1024.write_text("1024\t65535\n")
    monkeypatch.setattr(process, "EPHEMERAL_RANGE_FILE", start_at_1024)
    assert ephemeral_range() == (1024, 65535)
    assert bindable(free_port())
    monkeypatch.setattr(process, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert ephemeral_range() is None and bindable(free_port())


@pytest.mark.skipif(ephemeral_range() is None, reason="the kernel reports no ephemeral range")
def test_a_taken_draw_is_skipped(monkeypatch) -> None:
    taken, free = free_port(), free_port()
    while free == taken:
        free = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", taken))
        holder.listen()
        draws = iter([taken, free])
        monkeypatch.setattr(process._PICKER, "randrange", lambda low, high: next(draws))
        assert free_port() == free

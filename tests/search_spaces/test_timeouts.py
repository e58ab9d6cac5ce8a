"""batch_timeout_micros below TF Serving's 1 ms re-check (shared_batch_scheduler.h's
kTimeoutMillis) cannot be told apart: shipped spaces avoid it, user spaces get a warning."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from search_spaces.loader import available_spaces, load_space


@pytest.mark.parametrize("name", available_spaces())
def test_shipped_spaces_use_zero_or_whole_milliseconds(name: str, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="search_spaces"):
        space = load_space(name)
    assert space.warnings == []
    assert not caplog.records
    dim = space._batching["batch_timeout_micros"]
    assert all(v == 0 or v % 1000 == 0 for v in dim.grid_values())


@pytest.mark.parametrize(
    "line",
    [
        "batch_timeout_micros = { low = 0, high = 20000, step = 250 }",
        "batch_timeout_micros = { choices = [0, 500, 2000] }",
        "batch_timeout_micros = 300",
        "batch_timeout_micros = { low = 100, high = 10000, log = true }",
    ],
)
def test_sub_millisecond_values_or_steps_warn_in_one_line(tmp_path: Path, caplog, line) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(f"[batching]\nmax_batch_size = 8\n{line}\n")
    with caplog.at_level(logging.WARNING, logger="search_spaces"):
        space = load_space(path)
    assert len(space.warnings) == 1
    assert [r.getMessage().count("\n") for r in caplog.records] == [0]
    assert "1 ms" in space.warnings[0] and str(path) in space.warnings[0]


@pytest.mark.parametrize(
    "line",
    [
        "batch_timeout_micros = { low = 0, high = 20000, step = 1000 }",
        "batch_timeout_micros = { choices = [0, 1000, 5000] }",
        "batch_timeout_micros = 0",
        "max_enqueued_batches = 4",  # no timeout dimension at all
    ],
)
def test_zero_and_whole_milliseconds_do_not_warn(tmp_path: Path, line) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(f"[batching]\nmax_batch_size = 8\n{line}\n")
    assert load_space(path).warnings == []

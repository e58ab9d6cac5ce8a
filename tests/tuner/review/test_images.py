"""PNGs drawn by kaleido in the real Chromium: a render that fails (kaleido can evaluate it
before its page's scripts are defined) is drawn again; one that keeps failing is a sentence."""

from __future__ import annotations

import logging
from pathlib import Path

import kaleido
import plotly.graph_objects as go
import pytest

from tuner.errors import TunerError
from tuner.review.images import write_pngs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def figure() -> go.Figure:
    return go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2]))


def failing_first(monkeypatch: pytest.MonkeyPatch, failures: int) -> list[int]:
    """kaleido's render raising kaleido's ReferenceError `failures` times, then drawing."""
    real = kaleido.write_fig_from_object_sync
    calls: list[int] = []

    def render(*args, **kwargs):
        calls.append(1)
        if len(calls) <= failures:
            raise RuntimeError("ReferenceError: kaleido_scopes is not defined")
        return real(*args, **kwargs)

    monkeypatch.setattr(kaleido, "write_fig_from_object_sync", render)
    return calls


@pytest.mark.browser
def test_a_render_that_fails_once_is_drawn_again(monkeypatch, tmp_path: Path, caplog) -> None:
    caplog.set_level(logging.INFO, logger="tuner")
    calls = failing_first(monkeypatch, failures=1)
    (path,) = write_pngs({"curve": figure()}, tmp_path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert len(calls) >= 2  # the forced failure, then real renders (the race may recur)
    assert "event=png_retried" in caplog.text


@pytest.mark.browser
def test_a_render_that_keeps_failing_is_one_sentence(monkeypatch, tmp_path: Path) -> None:
    calls = failing_first(monkeypatch, failures=3)
    with pytest.raises(TunerError, match=r"could not draw the plots \(ReferenceError: kaleido_sc"):
        write_pngs({"curve": figure()}, tmp_path)
    assert len(calls) == 3
    assert not (tmp_path / "curve.png").exists()

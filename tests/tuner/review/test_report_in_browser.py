"""The report as a person sees it: opened from disk in a real headless Chromium (no network),
its scripts run without an error and every plot is drawn with its traces."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.browser import headless_chromium, open_page
from tests.tuner.review.conftest import CURVES
from tuner.commands.cli import main

pytestmark = pytest.mark.browser
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def report(capacity_config, capacity_study, monkeypatch, tmp_path: Path) -> Path:
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "report.html"
    args = ["report", "--storage", capacity_config.study.storage, "--study-name", "s"]
    assert main([*args, "--out", str(out), "--png", str(tmp_path / "png")]) == 0
    return out


def test_the_page_draws_every_plot_without_script_errors(report: Path) -> None:
    with headless_chromium() as browser, open_page(browser, report.as_uri()) as page:
        drawn = page.evaluate(
            "Array.from(document.querySelectorAll('.js-plotly-plot'))"
            ".map(d => [d.id, d.querySelectorAll('.main-svg').length,"
            " d.querySelectorAll('.scatterlayer .trace, .barlayer .trace').length])"
        )
        title = page.evaluate("document.title")
        errors = list(page.errors)
    assert errors == []
    assert title == "Batching study s"
    plots = {plot_id: (svgs, traces) for plot_id, svgs, traces in drawn}
    assert set(plots) == {"plot-curves", "plot-scatter", "plot-importances"}
    assert all(svgs >= 1 for svgs, _ in plots.values())
    assert plots["plot-curves"][1] == len(CURVES) + 1  # a line per completed trial + the SLO
    assert plots["plot-importances"][1] == 1


def test_png_files_are_written_for_every_plot(report: Path) -> None:
    pngs = sorted((report.parent / "png").iterdir())
    assert [p.name for p in pngs] == ["curves.png", "importances.png", "scatter.png"]
    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC

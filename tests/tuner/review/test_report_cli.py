"""`python -m tuner report` in-process: the file it writes, and one sentence with the right
exit code when the study, --out or the browser for --png is wrong."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.tuner.review.conftest import WINNER
from tuner.commands.cli import main


@pytest.fixture
def args(capacity_config, capacity_study, monkeypatch, tmp_path: Path) -> list[str]:
    monkeypatch.chdir(tmp_path)  # no ./tuner.toml of the checkout
    return ["report", "--storage", capacity_config.study.storage, "--study-name", "s"]


def _one_error_line(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_report_writes_one_self_contained_page(args, capfd, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    assert main([*args, "--out", str(out)]) == 0
    assert f"wrote {out}" in capfd.readouterr().out
    page = out.read_text()
    assert not re.search(r"<script[^>]+src=", page)  # nothing to fetch: it opens offline
    assert "Plotly.newPlot" in page and page.count('id="plot-') == 3
    assert f'<tr class="COMPLETE winner"><td>{WINNER}</td>' in page
    assert "pruned: cannot beat the best capacity so far" in page
    assert "max_batch_size" in page.split('id="batching-file"')[1]
    assert "2.67x no batching" in page.split('id="headline"')[1].split("</p>")[0]


def test_missing_study_is_one_sentence_exit_1(capsys, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["report", "--storage", f"sqlite:///{tmp_path / 'none.db'}"])
    assert code == 1
    assert "there is no database at" in _one_error_line(capsys)
    assert not (tmp_path / "report.html").exists()


def test_unknown_study_name_is_one_sentence_exit_1(args, capsys) -> None:
    assert main([*args[:-1], "other"]) == 1
    assert "there is no study named 'other'" in _one_error_line(capsys)


def test_out_in_a_missing_directory_is_one_sentence_exit_1(args, capsys, tmp_path) -> None:
    out = tmp_path / "nowhere" / "report.html"
    assert main([*args, "--out", str(out)]) == 1
    assert "its directory" in _one_error_line(capsys) and not out.exists()


def test_out_that_is_a_directory_is_one_sentence_exit_1(args, capsys, tmp_path) -> None:
    assert main([*args, "--out", str(tmp_path)]) == 1
    assert "is a directory" in _one_error_line(capsys)


def test_png_without_a_browser_is_one_sentence_exit_1(args, capsys, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("BROWSER_PATH", str(tmp_path / "no-chromium"))
    code = main([*args, "--out", str(tmp_path / "r.html"), "--png", str(tmp_path / "png")])
    assert code == 1
    assert "needs Chrome or Chromium" in _one_error_line(capsys)
    assert (tmp_path / "r.html").exists() and not (tmp_path / "png").exists()


def test_png_with_a_browser_that_does_not_start_is_one_sentence_exit_1(
    args, capsys, tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("BROWSER_PATH", "/bin/false")
    code = main([*args, "--out", str(tmp_path / "r.html"), "--png", str(tmp_path / "png")])
    assert code == 1
    assert "the browser at /bin/false could not draw the plots" in _one_error_line(capsys)

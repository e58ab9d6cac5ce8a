"""`python -m tuner report`: read the study, draw its figures, write one HTML file (and the
PNG files when asked)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tuner.config import TunerConfig
from tuner.errors import TunerError
from tuner.review.data import ReviewData, review_data
from tuner.review.figures import report_figures
from tuner.review.images import write_pngs
from tuner.review.page import render_page
from tuner.storage import SampleStore, StorageError


@dataclass(frozen=True)
class WrittenReport:
    path: Path
    pngs: list[Path]
    data: ReviewData


def write_report(config: TunerConfig, out: Path, png_dir: Path | None = None) -> WrittenReport:
    from tuner.study.run import load_existing_study

    study = load_existing_study(config)
    if out.is_dir():
        raise TunerError(f"--out {out} is a directory; give the path of the HTML file to write")
    if not out.parent.is_dir():
        raise TunerError(
            f"cannot write {out}: its directory {out.parent} does not exist; create it or "
            "choose another --out"
        )
    try:
        samples = SampleStore(config.study.storage)
    except StorageError as exc:
        raise TunerError(str(exc)) from None
    try:
        data = review_data(study, samples, config.objective.percentile, config.objective.slo_ms)
    finally:
        samples.close()
    figures = report_figures(data)
    page = render_page(data, figures)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(page, encoding="utf-8")
        tmp.replace(out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise TunerError(
            f"cannot write {out} ({exc.strerror or exc}); choose a writable --out"
        ) from None
    pngs = write_pngs(figures, png_dir) if png_dir is not None else []
    return WrittenReport(out, pngs, data)

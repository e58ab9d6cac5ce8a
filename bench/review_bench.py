"""What reviewing a study costs: `python -m tuner report` on a finished study (the page, and
the page with `--png`), and the per-trial `curve.png` the tuner draws for optuna-dashboard
(time added to every trial when a Chrome/Chromium is installed).

    python bench/review_bench.py [--config tuner.toml] [--repeats 5]

Run after `make demo` (it reads that study). Writes bench/out/review_bench.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tuner.config import load_config  # noqa: E402
from tuner.review.data import TrialCurve  # noqa: E402
from tuner.review.figures import trial_curve_figure  # noqa: E402
from tuner.review.images import write_pngs  # noqa: E402
from tuner.review.report import write_report  # noqa: E402


def _median_s(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(REPO / "tuner.toml"))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    config = load_config(args.config, {})
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.html"
        page_s = _median_s(lambda: write_report(config, out), args.repeats)
        written = write_report(config, out)
        png_s = _median_s(lambda: write_report(config, out, Path(tmp) / "png"), args.repeats)
        curves = written.data.curves
        curve = next((c for c in curves if c.role == "winner"), curves[0])
        one = TrialCurve(curve.trial, curve.label, "", curve.points)
        o = config.objective
        figure = trial_curve_figure(one, o.percentile, o.slo_ms, written.data.capacity)
        trial_png_s = _median_s(
            lambda: write_pngs({"curve": figure}, Path(tmp) / "trial", scale=1.5), args.repeats
        )
        results = {
            "study": config.study.name,
            "trials": written.data.trials,
            "repeats": args.repeats,
            "report_s": page_s,
            "report_with_png_s": png_s,
            "report_bytes": out.stat().st_size,
            "trial_curve_png_s": trial_png_s,
        }
    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    (REPO / "bench" / "out" / "review_bench.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

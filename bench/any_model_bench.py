"""Does what the demo found generalise? The image model's capacity at an SLO suited to it:
no batching vs TF Serving's recommended start vs the tuned, confirmed winner.

The whole user path, through the tuner's library: build the example image classifier
(float32 [None, 32, 32, 3], convolutional, random weights), `init` (its SLO from one measured
request), then `optimize` with init's config as it is (embedded server, capacity mode, the
quick space, confirmation with both references), in bench/out/any_model/:

    python bench/any_model_bench.py [--trials 8] [--target service|rest|grpc] [--short]

Writes bench/out/any_model_bench.json: each capacity with `lower_bound` (its search stopped
before crossing the SLO, so it is ">=", kept apart from measured runs), ratios that say
">=" or "<=" when one side is a bound, and `machine`: per trial and for the confirmation, the
speed probe, steal time and other processes' CPU (bench/machine_watch.py). A full run
takes about as long as `make demo` on a quiet machine; `--short` (4 trials, shorter steps)
checks the script in a few minutes.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402

from bench.capacity_bench import point  # noqa: E402
from bench.machine_watch import MachineWatch, machine_by_phase  # noqa: E402
from bench.study_figures import say  # noqa: E402
from scripts.example_models import build_image_model  # noqa: E402
from tuner.commands.init_config import write_config  # noqa: E402
from tuner.config import load_config  # noqa: E402
from tuner.review.show import winner_summary  # noqa: E402
from tuner.study.bounds import is_lower_bound  # noqa: E402
from tuner.study.progress import describe_params  # noqa: E402
from tuner.study.run import optimize  # noqa: E402
from tuner.study.run_spread import RUN_SPREAD_ATTR  # noqa: E402
from tuner.trial_record import REFERENCE_ATTR  # noqa: E402


def run(out: Path, args: argparse.Namespace) -> dict:
    model = build_image_model(out / "image")
    config_path, _, timing = write_config(model, out / "tuner.toml", force=True)
    overrides: dict[str, dict] = {
        "study": {
            "n_trials": args.trials,
            "storage": f"sqlite:///{out / 'tuning.db'}",
            "artifact_dir": str(out / "artifacts"),
        },
        "server": {"backend": "embedded"},
        "load": {"target": args.target},
    }
    if args.short:
        overrides["load"].update(step_measure_s=2.0, max_steps=4)
        overrides["confirm"] = {"top_k": 1, "repeats": 1}
    config = load_config(config_path, overrides)
    with MachineWatch(out / "machine.jsonl") as watch:
        result = optimize(config, say=say("image"))
    study = optuna.load_study(study_name=config.study.name, storage=config.study.storage)
    confirmation = study.user_attrs.get("confirmation") or {}
    refs = {t.user_attrs[REFERENCE_ATTR]: t for t in study.trials if REFERENCE_ATTR in t.user_attrs}

    def capacity(trial: optuna.trial.FrozenTrial | None) -> dict | None:
        """The confirmation's figure when it re-measured the trial (the median of its measured
        runs, bounds apart), else the trial's own; `lower_bound` when the figure is one (a
        search that stopped before crossing the SLO), never averaged with measurements."""
        if trial is None:
            return None
        confirmed = confirmation.get(str(trial.number))
        if confirmed:
            return {
                "rps": confirmed["median_rps"],
                "lower_bound": bool(confirmed.get("lower_bound")),
                "measured_rps": confirmed.get("measured_rps", confirmed["rps"]),
                "lower_bounds_rps": confirmed.get("lower_bounds_rps", []),
            }
        rps = trial.user_attrs.get("capacity_rps")
        if not rps:
            return None
        bound = is_lower_bound({"ci": trial.user_attrs.get("capacity_ci_rps")})
        return {
            "rps": rps,
            "lower_bound": bound,
            "measured_rps": [] if bound else [rps],
            "lower_bounds_rps": [rps] if bound else [],
        }

    winner = result.winner or {}
    won = study.trials[winner["trial"]] if winner else None
    figures = {
        "no_batching": capacity(refs.get("no_batching")),
        "tf_serving_recommended": capacity(refs.get("tf_serving_recommended")),
        "winner": capacity(won),
        "winner_params": describe_params(won) if won else None,
    }
    ratios = {
        f"winner_vs_{name}": quoted
        for name in ("no_batching", "tf_serving_recommended")
        if (quoted := bounded_ratio(figures["winner"], figures[name])) is not None
    }
    return {
        "model": "image: float32 [None, 32, 32, 3], 2 conv layers, random weights",
        "target": args.target,
        "one_request_ms": round(timing.median_ms, 2),
        "one_request_timing": timing.describe(),
        "slo": f"{config.objective.percentile} <= {config.objective.slo_ms:g} ms",
        "capacity_rps": figures,
        "ratios": ratios,
        # the tuner's own summary: the same ratios with their 95% intervals and any tie
        "summary": winner_summary(study, config.objective.percentile),
        "run_spread": study.user_attrs.get(RUN_SPREAD_ATTR),
        "trials": [point(t, config.objective.percentile) for t in study.trials],
        "machine": machine_by_phase(watch, study),
    }


def bounded_ratio(a: dict | None, b: dict | None) -> str | None:
    """a / b, as ">= 1.5" when a is a lower bound, "<= 1.5" when b is, None when both are
    (nothing can be said) or either is missing."""
    if not a or not b or not a["rps"] or not b["rps"]:
        return None
    if a["lower_bound"] and b["lower_bound"]:
        return None
    value = f"{a['rps'] / b['rps']:.2f}"
    if a["lower_bound"]:
        return f">= {value}"
    return f"<= {value}" if b["lower_bound"] else value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--target", choices=("service", "rest", "grpc"), default="service")
    parser.add_argument("--short", action="store_true", help="4 trials, short steps")
    args = parser.parse_args()
    if args.short:
        args.trials = min(args.trials, 4)
    out = REPO / "bench" / "out" / "any_model"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    figures = run(out, args)
    path = REPO / "bench" / "out" / "any_model_bench.json"
    path.write_text(json.dumps(figures, indent=2))
    print(json.dumps({k: figures[k] for k in ("slo", "capacity_rps", "ratios")}, indent=2))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()

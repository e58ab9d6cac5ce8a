"""Replay studies against a recorded capacity surface: which sampler finds the best soonest.

    python -m bench.replay --surface FILE [--sampler NAME] [--seeds N] [--trials N]
                           [--json PATH] [--config tuner.toml] [--space SPACE]
                           [--draw repeats|interval] [--warm-scale F] [--warm-shift PARAM]

Each seed runs a whole study through the tuner's own optimize() (references queued, the
incumbent probe, pruning, the confirmation pass; tuner/study/run.py) whose measurements come from
the surface (bench/replay_target.py), on a simulated clock. Per sampler it reports the trials
and seconds until the study holds a configuration within 5% of the surface's best (median and
90th percentile over seeds), the confirmed winner's true capacity as a fraction of the best,
and how often the winner is the best or tied with it (their 95% intervals overlap).

With --warm-scale and/or --warm-shift, each seed first runs a study on the surface as it was
"before a change" (capacities times the scale, each parameter PARAM's values moved one step),
then a study of the real surface warm-started from it (study.warm_start), and reports the
same figures for the warm start beside the cold one.

A surface file that cannot be read is one sentence on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import math
import os
import random
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import optuna

from bench.replay_figures import WITHIN, Run, report_lines, summarize
from bench.replay_target import DRAWS, SurfaceTarget, replay_parts
from bench.surface_file import Surface, SurfaceError, read_surface, shifted
from search_spaces.loader import SearchSpaceError, load_space
from tuner.config import SAMPLERS, StudyConfig, TunerConfig, load_config
from tuner.errors import TunerError
from tuner.study.run import optimize
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, WINNER_ATTR, is_feasible

SEED_STRIDE = 1000
DEFAULT_SAMPLER = StudyConfig().sampler  # the tuner's; chosen on the recorded real surface


def skip_reason(name: str) -> str | None:
    """Why a sampler the replay knows cannot run here; None when it can."""
    if name == "gp" and importlib.util.find_spec("torch") is None:
        return (
            "Optuna's GPSampler needs PyTorch, which is not installed (a dependency of "
            "hundreds of MB for one sampler), so it is not offered as study.sampler"
        )
    return None


REPLAYED = (*SAMPLERS, "gp")


def replay_config(
    base: TunerConfig, workdir: Path, name: str, sampler: str, seed: int, trials: int
) -> TunerConfig:
    return dataclasses.replace(
        base,
        study=dataclasses.replace(
            base.study,
            name=name,
            storage=f"sqlite:///{workdir / 'replay.db'}",
            sampler=sampler,
            seed=seed,
            n_trials=trials,
            workdir=str(workdir / "runs"),
            artifact_dir=str(workdir / "artifacts"),
            warm_start=None,
            timeout_s=None,
        ),
        load=dataclasses.replace(base.load, mode="capacity"),
        server=dataclasses.replace(base.server, model_base_path=str(workdir)),
        base_dir=workdir,
    )


@contextlib.contextmanager
def no_figures() -> Iterator[None]:
    """Simulated trials draw no curve (tuner/review/images.py finds no browser)."""
    before = os.environ.get("BROWSER_PATH")
    os.environ["BROWSER_PATH"] = os.devnull
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("BROWSER_PATH", None)
        else:
            os.environ["BROWSER_PATH"] = before


def run_study(config: TunerConfig, target: SurfaceTarget) -> tuple[optuna.Study, SurfaceTarget]:
    """One whole study of `config`, measured on `target`."""
    with no_figures():
        optimize(config, say=lambda line: None, parts=replay_parts(target))
    study = optuna.load_study(study_name=config.study.name, storage=config.study.storage)
    return study, target


def measure_run(study: optuna.Study, target: SurfaceTarget) -> Run:
    surface = target.surface
    best = surface.best
    cost = {s.workdir: s.seconds for s in target.spent}
    # as close as the surface can tell: within its noise of the best, or 5% if that is wider
    near_share = min(1 - surface.noise_floor(), 1 - WITHIN)
    found, elapsed, found_after, near = math.inf, 0.0, math.inf, math.inf
    for count, trial in enumerate(sorted(study.trials, key=lambda t: t.number), start=1):
        elapsed += cost.get(f"trial-{trial.number:04d}", 0.0)
        true = surface.capacity(_key(surface, trial)) if is_feasible(trial) else 0.0
        if found == math.inf and true >= (1 - WITHIN) * best:
            found, found_after = count, elapsed
        if near == math.inf and true >= near_share * best:
            near = count
    winner = study.user_attrs.get(WINNER_ATTR) or {}
    fraction, tied = 0.0, False
    if winner.get("trial") is not None:
        key = _key(surface, study.trials[winner["trial"]])
        fraction = surface.capacity(key) / best
        tied = (
            key == surface.best_key
            or surface.interval(key)[1] >= surface.interval(surface.best_key)[0]
        )
    return Run(found, found_after, sum(cost.values()), fraction, tied, near, fraction >= near_share)


def _key(surface: Surface, trial: optuna.trial.FrozenTrial) -> tuple:
    if trial.user_attrs.get(REFERENCE_ATTR) == NO_BATCHING:
        return ()
    return surface.key_of(trial.params)


def replay_sampler(
    surface: Surface,
    base: TunerConfig,
    sampler: str,
    seeds: int,
    trials: int,
    draw: str = "repeats",
    before: Surface | None = None,
) -> dict:
    space = load_space(base.search.space)
    cold: list[Run] = []
    warm: list[Run] = []
    # in memory where the system has it: a study's thousands of small commits, not the disk's
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else None
    with tempfile.TemporaryDirectory(prefix="replay-", dir=shm) as tmp:
        workdir = Path(tmp)
        for seed in range(seeds):

            def target(s: Surface, label: str, seed: int = seed) -> SurfaceTarget:
                rng = random.Random(f"{label}/{sampler}/{seed}")
                return SurfaceTarget(s, space, rng, base.objective.slo_ms, draw)

            name = f"{sampler}-{seed}"
            # seeds far apart: the tuner seeds each trial with the study's seed + its number,
            # so studies seeded 0 and 1 would share all but one of their draws
            study_seed = SEED_STRIDE * seed
            config = replay_config(base, workdir, name, sampler, study_seed, trials)
            cold.append(measure_run(*run_study(config, target(surface, "cold"))))
            if before is not None:
                old = replay_config(base, workdir, f"before-{name}", sampler, study_seed, trials)
                run_study(old, target(before, "before"))
                config = replay_config(base, workdir, f"warm-{name}", sampler, study_seed, trials)
                config.study.warm_start = old.study.name
                warm.append(measure_run(*run_study(config, target(surface, "warm"))))
    figures = summarize(cold, trials)
    if before is not None:
        figures["warm_start"] = summarize(warm, trials)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.replay", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--surface", type=Path, required=True, help="a surface CSV file")
    parser.add_argument("--sampler", choices=REPLAYED, action="append", help="default: all")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--trials", type=int, default=15, help="each study's n_trials")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--config", type=Path, help="a tuner.toml: its objective, load, confirm")
    parser.add_argument("--space", help="the space the surface covers (default: its header)")
    parser.add_argument("--draw", choices=DRAWS, default="repeats")
    parser.add_argument("--warm-scale", type=float, help="replay a warm start: capacities x F")
    parser.add_argument("--warm-shift", help="replay a warm start: the best moved along PARAM")
    args = parser.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if args.seeds < 1 or args.trials < 3:
        parser.error("--seeds must be at least 1 and --trials at least 3")
    try:
        results = replay(args)
    except (SurfaceError, TunerError, SearchSpaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print("\n".join(report_lines(results)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2) + "\n")
        print(f"written to {args.json}")
    return 0


def replay(args: argparse.Namespace) -> dict:
    surface = read_surface(args.surface)
    space = args.space or surface.space
    if not space:
        raise SurfaceError(
            f"{args.surface} does not say which space it covers (# space: NAME); pass --space"
        )
    if not Path(space).is_absolute() and Path(args.surface.parent, space).is_file():
        space = str(Path(args.surface.parent, space))
    base = load_config(args.config, {"search": {"space": space}})
    before = None
    if args.warm_scale is not None or args.warm_shift is not None:
        before = shifted(surface, args.warm_scale or 1.0, args.warm_shift)
    results: dict = {"samplers": {}, "skipped": {}, "default": DEFAULT_SAMPLER}
    for name in args.sampler or REPLAYED:
        why = skip_reason(name)
        if why is not None:
            results["skipped"][name] = why
            continue
        results["samplers"][name] = replay_sampler(
            surface, base, name, args.seeds, args.trials, args.draw, before
        )
    results["surface"] = {
        "file": str(args.surface),
        "points": len(surface.points),
        "best_rps": round(surface.best, 1),
        # round N's capacities over round 0's, divided out when read (# rounds: scaled)
        "round_factors": {str(n): round(f, 4) for n, f in surface.round_factors.items()},
        # two searches of one point differ by about this (log sd): what the surface can rank
        "repeat_cv": None if (cv := surface.repeat_cv()) is None else round(cv, 4),
        "noise_floor": round(surface.noise_floor(), 4),
        # how often a search's 95% interval holds another search of its point (~0.83 if the
        # intervals held all of the noise)
        "interval_holds_repeat": (
            None if (held := surface.interval_holds_repeat()) is None else round(held, 3)
        ),
    }
    return results


if __name__ == "__main__":
    sys.exit(main())

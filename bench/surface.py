"""Record a capacity surface: every point of a search space (and no batching) searched for its
capacity `--repeats` times, in rounds of a random order, into one CSV (bench/surface_file.py
documents the columns; docs/concepts/samplers.md how to replay it).

    python -m bench.surface [--space quick] [--repeats 2] [--out bench/data/surface-quick.csv]
                            [--config tuner.toml] [--points N] [--step-measure-s S]
                            [--max-steps N] [--max-rps R]

Built on the tuner itself: each search is a trial of a study run by optimize() (the
configured backend, service and capacity search), queued with a reference label so it is
never pruned and always searched to the end; there is no confirmation pass. The study lives
beside the CSV (OUT.d/surface.db), so a run that was stopped continues where it left off: run
the same command again and it queues only what is missing (an interrupted search runs
again). The CSV is written from the study when a run ends, finished or stopped. In another
checkout, without that study, the committed CSV is where it left off: a new study carries its
rows over and records only what they miss.

A round (every point once) of the quick space's 145 points takes about 100 minutes on a
2-core machine (~40 s per search). The machine is not the same from one day to the next, so
record each round in one sitting: `--repeats 1` one day, `--repeats 2` another (or stop a
`--repeats 2` run between its rounds); the file says so, and its reader scales each round to
round 0 (bench/surface_file.py). `--points N` measures only N points (chosen at random, no
batching first) to try it out; such a file does not cover the space, and the replay says so.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import random
import sys
from collections import Counter
from pathlib import Path

import optuna

from bench.surface_file import (
    ROUNDS_SCALED,
    Row,
    Surface,
    SurfaceError,
    read_surface,
    write_surface,
)
from search_spaces.loader import SearchSpace, SearchSpaceError
from tuner.config import TunerConfig, load_config
from tuner.coordination.resume import counted_trials
from tuner.coordination.shared_trials import requeue
from tuner.errors import TunerError
from tuner.interrupts import interrupts_raised
from tuner.study.run import MODE_ATTR, SPACE_ATTR, load_search_space, open_study, optimize
from tuner.trial_record import NO_BATCHING, REFERENCE_ATTR, is_feasible

REPO = Path(__file__).resolve().parent.parent
# Written into the file: each round is recorded in one sitting, so that a round recorded on
# another day (another machine's speed) can be scaled to round 0 when the file is read.
ROUNDS_NOTE = " to round 0 when read: record each round in one sitting (bench/surface_file.py)"
# The rows the file held when this recording study began: earlier sittings, whose study (in the
# git-ignored OUT.d) another checkout does not have. Kept with the study, so that resuming it
# never counts its own rows, written to the file at its last stop, a second time.
CARRIED_ATTR = "surface_carried"
SURFACE = "surface"  # the reference label of a surface search: never pruned
TAKEN = (
    optuna.trial.TrialState.COMPLETE,
    optuna.trial.TrialState.PRUNED,
    optuna.trial.TrialState.RUNNING,
    optuna.trial.TrialState.WAITING,
)


def grid_points(space: SearchSpace) -> list[dict[str, object]]:
    grid = space.grid()
    return [dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())]


def key_of(space: SearchSpace, trial: optuna.trial.FrozenTrial) -> tuple:
    if trial.user_attrs.get(REFERENCE_ATTR) == NO_BATCHING:
        return ()
    params = trial.params or trial.system_attrs.get("fixed_params") or {}
    return tuple(params[name] for name in space.param_names)


def open_surface_study(config: TunerConfig, space: SearchSpace) -> optuna.Study:
    """The recorder's study, marked as optimize() checks a study it resumes."""
    study = open_study(config, space)
    if not study.trials:
        study.set_user_attr(SPACE_ATTR, space.name)
        study.set_user_attr(MODE_ATTR, config.load.mode)
    return study


def carried_rows(study: optuna.Study, out: Path, space: SearchSpace, space_ref: str) -> Surface:
    """What earlier sittings recorded in `out`, read once, when the study begins, and kept with
    it. A study that ran before it kept any (its rows are its own) carries nothing."""
    if CARRIED_ATTR not in study.user_attrs:
        kept: list = []
        if out.exists() and not study.trials:
            before = read_surface(out, scale_rounds=False)
            if before.params != list(space.param_names):
                raise SurfaceError(
                    f"{out} holds a surface of other parameters ({', '.join(before.params)}) "
                    f"than the space {space_ref} ({', '.join(space.param_names)}); pass --out "
                    "with another file"
                )
            kept = [
                [list(key), [dataclasses.asdict(r) for r in rows]]
                for key, rows in before.points.items()
            ]
        study.set_user_attr(CARRIED_ATTR, kept)
    carried = Surface(list(space.param_names), space=space_ref)
    for key, rows in study.user_attrs[CARRIED_ATTR]:
        carried.points[tuple(key)] = [Row(**r) for r in rows]
    return carried


def queue_missing(
    study: optuna.Study,
    space: SearchSpace,
    points: list[dict],
    repeats: int,
    seed: int,
    carried: Surface | None = None,
) -> int:
    """Queue, round by round in a random order, every search not yet done, carried over from
    an earlier sitting or queued; returns how many were queued."""
    requeue(study)  # what a stopped run cut short runs again
    have = Counter(key_of(space, t) for t in study.get_trials(deepcopy=False, states=TAKEN))
    if carried is not None:
        have.update({key: len(rows) for key, rows in carried.points.items()})
    rng = random.Random(f"{seed}/{len(study.trials)}")
    queued = 0
    for round_number in range(repeats):
        order = list(points)
        rng.shuffle(order)
        for params in order:
            key = tuple(params[n] for n in space.param_names) if params else ()
            if have[key] > round_number:
                continue
            label = SURFACE if params else NO_BATCHING
            study.enqueue_trial(params, user_attrs={REFERENCE_ATTR: label}, skip_if_exists=False)
            have[key] += 1
            queued += 1
    return queued


def surface_of(
    study: optuna.Study, space: SearchSpace, space_ref: str, carried: Surface | None = None
) -> Surface:
    """One row per finished search, each point's repeats in the order they ran, after those
    carried over from earlier sittings."""
    surface = Surface(list(space.param_names), space=space_ref)
    for key, rows in (carried.points if carried is not None else {}).items():
        surface.points[key] = list(rows)
    done = study.get_trials(
        deepcopy=False,
        states=[optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED],
    )
    for trial in sorted(done, key=lambda t: t.number):
        rows = surface.points.setdefault(key_of(space, trial), [])
        a = trial.user_attrs
        ci = a.get("capacity_ci_rps") or [None, None]
        feasible = is_feasible(trial)
        seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
        rows.append(
            Row(
                capacity_rps=float(a.get("capacity_rps") or 0.0) if feasible else 0.0,
                ci_low=ci[0] if feasible else None,
                ci_high=ci[1] if feasible else None,
                repeat=len(rows),
                seconds=seconds,
                pruned=trial.state == optuna.trial.TrialState.PRUNED,
            )
        )
    return surface


def surface_config(args: argparse.Namespace, workdir: Path) -> TunerConfig:
    overrides: dict[str, dict] = {
        "study": {
            "name": f"surface-{Path(args.space).stem}",
            "storage": f"sqlite:///{workdir / 'surface.db'}",
            "workdir": str(workdir / "runs"),
            "artifact_dir": str(workdir / "artifacts"),
        },
        "search": {"space": args.space},
        "load": {"mode": "capacity"},
        "confirm": {"top_k": 0},
    }
    if args.step_measure_s is not None:
        overrides["load"]["step_measure_s"] = args.step_measure_s
    if args.max_steps is not None:
        overrides["load"]["max_steps"] = args.max_steps
    if args.max_rps is not None:
        overrides["load"]["max_rps"] = args.max_rps
    return load_config(args.config, overrides)


def record(args: argparse.Namespace) -> Surface:
    workdir = args.out.with_suffix(".d")
    workdir.mkdir(parents=True, exist_ok=True)
    config = surface_config(args, workdir)
    space = load_search_space(config)
    points: list[dict] = [{}, *grid_points(space)]
    if args.points is not None:
        rng = random.Random(args.seed)
        points = [{}, *rng.sample(points[1:], max(0, args.points - 1))]
    study = open_surface_study(config, space)
    carried = carried_rows(study, args.out, space, args.space)
    queued = queue_missing(study, space, points, args.repeats, args.seed, carried)
    waiting = len(study.get_trials(deepcopy=False, states=[optuna.trial.TrialState.WAITING]))
    config.study.n_trials = max(1, counted_trials(study) + waiting)
    print(f"{queued} searches queued, {waiting} to run; the study is in {config.study.storage}")
    try:
        if waiting:
            optimize(config, say=lambda line: print(line, flush=True))
    finally:  # stopped or not, the file holds every search finished so far
        surface = surface_of(study, space, args.space, carried)
        if surface.points:
            write_surface(args.out, surface, [ROUNDS_SCALED + ROUNDS_NOTE])
    return surface


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.surface", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--space", default="quick", help="a shipped space or a space file")
    parser.add_argument("--repeats", type=int, default=2, help="searches per point (>= 2)")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "data" / "surface-quick.csv")
    parser.add_argument("--config", type=Path, default=REPO / "tuner.toml")
    parser.add_argument("--points", type=int, help="only this many points (to try it out)")
    parser.add_argument("--step-measure-s", type=float, help="override load.step_measure_s")
    parser.add_argument("--max-steps", type=int, help="override load.max_steps")
    parser.add_argument(
        "--max-rps", type=float, help="override load.max_rps (above every point's capacity)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the order of each round")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the tuner's progress lines say it
    try:
        with interrupts_raised():
            surface = record(args)
    except (TunerError, SearchSpaceError, SurfaceError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"interrupted: the searches finished so far are in {args.out}; run the same "
            "command to continue",
            file=sys.stderr,
        )
        return 130
    rows = sum(len(r) for r in surface.points.values())
    print(f"{rows} searches of {len(surface.points)} points written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

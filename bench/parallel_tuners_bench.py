"""What sharing a study costs: 1, 2 and 3 tuners on one PostgreSQL, and storage per trial.

1. A `--trials`-trial study (closed loop, tiny windows, no confirmation) run by 1, 2 and 3
   `python -m tuner optimize` processes on one PostgreSQL server (pgserver, unix socket):
   wall time, the trial count check (exactly n_trials, references once, no duplicate), and
   the scheduling overhead, the seconds between a tuner's trial's end and its next trial's
   start (claiming under the study lock, the sampler, the server restart is inside the trial).
   On a 2-core machine the tuners contend for the CPU, so wall time is no speed-up figure.
2. Storage operations per trial on SQLite vs PostgreSQL: the SQL statements Optuna's
   RDBStorage, the study lock and the samples table execute for a trial with an objective
   that records what a real trial records (about 25 user attrs, intermediate values, a
   samples row per interval) but measures nothing, and the time per trial.

    python bench/parallel_tuners_bench.py [--trials 12] [--tuners 1 2 3] [--storage-trials 30]

Writes bench/out/parallel_tuners_bench.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import optuna  # noqa: E402
from sqlalchemy import event  # noqa: E402

from tests.support.postgres import running_postgres  # noqa: E402
from tests.support.studies import config_for  # noqa: E402
from tuner.coordination.resume import counted_trials  # noqa: E402
from tuner.coordination.shared_trials import SharedTrials  # noqa: E402
from tuner.coordination.study_lock import StudyLock  # noqa: E402
from tuner.storage import SampleStore  # noqa: E402
from tuner.study.run import join_study, load_search_space, open_study  # noqa: E402
from tuner.trial_record import REFERENCE_ATTR  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
MODEL = REPO / "models" / "sentiment"


def study_run(url: str, tuners: int, trials: int, workdir: Path) -> dict:
    workdir.mkdir(parents=True)
    (workdir / "tuner.toml").write_text(
        f'[study]\nname = "bench"\nstorage = "{url}"\nn_trials = {trials}\nsampler = "random"\n'
        f'[server]\nbackend = "embedded"\nmodel_base_path = "{MODEL}"\n[search]\nspace = "quick"\n'
        '[load]\nmode = "closed"\nusers = 4\nspawn_rate = 4.0\nwarmup_s = 1.0\nmeasure_s = 2.0\n'
        "[objective]\nslo_ms = 1000.0\n[confirm]\ntop_k = 0\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "tuner", "optimize", "--worker", f"t{i}"],
            cwd=workdir,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        for i in range(tuners)
    ]
    codes = [p.wait(timeout=1800) for p in procs]
    wall = time.monotonic() - started
    study = optuna.load_study(study_name="bench", storage=url)
    done = study.get_trials()
    gaps = []
    for worker in {t.user_attrs.get("worker") for t in done}:
        mine = sorted(
            (t for t in done if t.user_attrs.get("worker") == worker),
            key=lambda t: t.datetime_start,
        )
        gaps += [
            (b.datetime_start - a.datetime_complete).total_seconds()
            for a, b in itertools.pairwise(mine)
        ]
    refs = Counter(t.user_attrs.get(REFERENCE_ATTR) for t in done if REFERENCE_ATTR in t.user_attrs)
    return {
        "tuners": tuners,
        "exit_codes": codes,
        "wall_s": round(wall, 1),
        "trials_stored": len(done),
        "trials_counted": counted_trials(study),
        "states": dict(Counter(t.state.name for t in done)),
        "references": dict(refs),
        "duplicate_numbers": len(done) - len({t.number for t in done}),
        "per_worker": dict(Counter(t.user_attrs.get("worker") for t in done)),
        "median_trial_s": round(
            statistics.median(
                (t.datetime_complete - t.datetime_start).total_seconds() for t in done
            ),
            2,
        ),
        "median_gap_s": round(statistics.median(gaps), 3) if gaps else None,
        "max_gap_s": round(max(gaps), 3) if gaps else None,
    }


def storage_ops(url: str, trials: int, workdir: Path) -> dict:
    """Statements and time per trial of the claim loop around an objective that records what
    a real closed-loop trial records."""
    config = config_for(workdir, storage=url, sampler="random")
    space = load_search_space(config)
    lock = StudyLock(url, "s")
    with lock:
        study = open_study(config, space)
        join_study(study, space, config, say=lambda line: None)
    samples = SampleStore(url, worker="bench")
    statements = Counter()

    def count(conn, cursor, statement, *args) -> None:
        statements[statement.split(None, 1)[0].upper()] += 1

    rdb = getattr(study._storage, "_backend", study._storage)  # under Optuna's cache
    engines = [rdb.engine, samples._engine]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", count)
    intervals = [
        SimpleNamespace(
            index=i, t_s=float(i), in_warmup=i == 0, requests=100, failures=0, rps=100.0,
            p50_ms=5.0, p95_ms=9.0, p99_ms=12.0, failures_by_code={},
        )
        for i in range(4)
    ]  # fmt: skip

    def objective(trial: optuna.Trial) -> float:
        trial.set_user_attr("worker", "bench")
        if REFERENCE_ATTR not in trial.user_attrs:
            space.suggest(trial)
        for key in range(22):
            trial.set_user_attr(f"figure_{key}", key * 1.5)
        for s in intervals[1:]:
            trial.report(s.rps, step=s.index)
        samples.write("s", trial.number, intervals)
        return 1.0

    started = time.perf_counter()
    SharedTrials(study, lock, trials).run(objective)
    elapsed = time.perf_counter() - started
    lock.close()
    samples.close()
    total = sum(statements.values())
    return {
        "statements_per_trial": round(total / trials, 1),
        "by_kind_per_trial": {k: round(v / trials, 1) for k, v in statements.most_common()},
        "ms_per_trial": round(1000 * elapsed / trials, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--tuners", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--storage-trials", type=int, default=30)
    args = parser.parse_args()
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    result: dict = {"cpus": os.cpu_count(), "load_before": os.getloadavg()}
    with running_postgres() as pg, tempfile.TemporaryDirectory() as tmp:
        result["storage"] = {
            "sqlite": storage_ops(f"sqlite:///{tmp}/ops.db", args.storage_trials, Path(tmp)),
            "postgresql": storage_ops(pg.new_database("ops"), args.storage_trials, Path(tmp)),
        }
        print(json.dumps(result["storage"], indent=2), flush=True)
        result["studies"] = []
        for n in args.tuners:
            run = study_run(pg.new_database("bench"), n, args.trials, Path(tmp) / f"tuners-{n}")
            result["studies"].append(run)
            print(json.dumps(run), flush=True)
    result["load_after"] = os.getloadavg()
    (out / "parallel_tuners_bench.json").write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""SampleStore: per-interval load samples in our own table, next to Optuna's in one database."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import optuna
import pytest
from sqlalchemy import create_engine, inspect

from tuner.storage import (
    SAMPLES_TABLE,
    STEPS_TABLE,
    SampleStore,
    StorageError,
    StoredSample,
    open_storage,
)

optuna.logging.set_verbosity(optuna.logging.WARNING)


@dataclass(frozen=True)
class Interval:
    """Shaped like tuner.load's IntervalSample; SampleStore only reads the attributes."""

    index: int
    t_s: float
    in_warmup: bool
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failures_by_code: dict[str, int] = field(default_factory=dict)


def _intervals(n: int, *, rps: float = 100.0) -> list[Interval]:
    return [
        Interval(
            index=i,
            t_s=float(i + 1),
            in_warmup=i < 2,
            requests=int(rps),
            failures=i % 2,
            rps=rps + i,
            p50_ms=10.0 + i,
            p95_ms=20.0 + i,
            p99_ms=None if i == 0 else 30.0 + i,
            failures_by_code={"model_server_overloaded": i % 2} if i % 2 else {},
        )
        for i in range(n)
    ]


def test_round_trip_keeps_every_field(database_url: str) -> None:
    with SampleStore(database_url) as store:
        store.write("study", 3, _intervals(4))
        rows = store.read("study", 3)

    assert [r.index for r in rows] == [0, 1, 2, 3]
    first, second = rows[0], rows[1]
    assert first == StoredSample(
        study_name="study",
        trial_number=3,
        phase="trial",
        repeat=0,
        index=0,
        t_s=1.0,
        in_warmup=True,
        requests=100,
        failures=0,
        rps=100.0,
        p50_ms=10.0,
        p95_ms=20.0,
        p99_ms=None,
        failures_by_code={},
    )
    assert second.failures_by_code == {"model_server_overloaded": 1}
    assert second.p99_ms == 31.0


def test_duck_typed_samples_phases_repeats_and_filters(database_url: str) -> None:
    store = SampleStore(database_url)
    try:
        store.write("s", 0, _intervals(2))
        store.write("s", 1, _intervals(3))
        # Any object with the attributes will do, e.g. a SimpleNamespace.
        loose = SimpleNamespace(**vars(_intervals(1)[0]))
        store.write("s", 1, [loose], phase="confirm", repeat=1)
        store.write("s", 1, [loose], phase="confirm", repeat=0)
        store.write("other", 1, _intervals(5))

        assert len(store.read("s")) == 2 + 3 + 2
        trial_1 = store.read("s", 1)
        assert [(r.phase, r.repeat, r.index) for r in trial_1] == [
            ("confirm", 0, 0),
            ("confirm", 1, 0),
            ("trial", 0, 0),
            ("trial", 0, 1),
            ("trial", 0, 2),
        ]
        assert [r.repeat for r in store.read("s", 1, phase="confirm")] == [0, 1]
        assert store.read("s", 7) == []
        assert store.read("missing") == []
    finally:
        store.close()


def test_writing_an_interval_again_replaces_it(database_url: str) -> None:
    """Streaming interval by interval and writing everything at the end give the same rows."""
    store = SampleStore(database_url)
    samples = _intervals(3)
    for sample in samples:
        store.write("s", 0, [sample])
    store.write("s", 0, samples)
    store.write("s", 0, [_intervals(3, rps=500.0)[1]])

    rows = store.read("s", 0)
    assert [r.rps for r in rows] == [100.0, 501.0, 102.0]
    store.close()


def test_stored_samples_can_be_written_back(database_url: str) -> None:
    store = SampleStore(database_url)
    store.write("a", 0, _intervals(2))
    store.write("b", 0, store.read("a", 0))
    assert [(r.study_name, r.rps) for r in store.read("b")] == [("b", 100.0), ("b", 101.0)]
    store.close()


def test_lives_next_to_optuna_without_interfering(database_url: str) -> None:
    url = database_url
    storage = open_storage(url)
    study = optuna.create_study(storage=storage, study_name="s")
    study.optimize(lambda t: t.suggest_int("max_batch_size", 1, 8), n_trials=2)
    optuna_tables = set(inspect(storage.engine).get_table_names())
    revision = storage.get_current_version()

    store = SampleStore(url)
    store.write("s", 1, _intervals(2))

    engine = create_engine(url)
    inspector = inspect(engine)
    assert set(inspector.get_table_names()) == optuna_tables | {SAMPLES_TABLE, STEPS_TABLE}
    indexed = [tuple(ix["column_names"]) for ix in inspector.get_indexes(SAMPLES_TABLE)]
    assert ("study_name", "trial_number") in indexed
    engine.dispose()

    reopened = open_storage(url)  # Optuna's schema check and alembic revision are untouched
    assert reopened.get_current_version() == revision
    assert len(optuna.load_study(study_name="s", storage=reopened).trials) == 2
    assert len(store.read("s", 1)) == 2
    store.close()


def test_created_before_the_study_and_in_wal_mode(tmp_path: Path) -> None:
    db = tmp_path / "sub" / "tuning.db"
    store = SampleStore(f"sqlite:///{db}")
    store.write("s", 0, _intervals(1))
    with sqlite3.connect(db) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    study = optuna.create_study(storage=open_storage(f"sqlite:///{db}"), study_name="s")
    assert study.study_name == "s"
    assert len(store.read("s")) == 1
    store.close()


def test_in_memory_url() -> None:
    store = SampleStore("sqlite://")
    store.write("s", 0, _intervals(2))
    assert len(store.read("s", 0)) == 2
    store.close()


def test_errors_are_storage_errors(tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(StorageError, match="writable path"):
        SampleStore(f"sqlite:///{blocker / 'tuning.db'}")
    with pytest.raises(StorageError, match="driver"):
        SampleStore("sqlite+nosuchdriver:///x.db")
    store = SampleStore("sqlite://")
    with pytest.raises(ValueError, match="phase"):
        store.write("s", 0, _intervals(1), phase="")
    store.close()


def test_accepts_the_load_runners_interval_samples(database_url: str) -> None:
    from tuner.load import IntervalSample

    sample = IntervalSample(
        index=5,
        t_s=6.0,
        in_warmup=False,
        requests=240,
        failures=3,
        rps=240.0,
        p50_ms=8.5,
        p95_ms=21.0,
        p99_ms=40.0,
        failures_by_code={"model_server_overloaded": 2, "timeout": 1},
    )
    with SampleStore(database_url) as store:
        store.write("s", 2, [sample], phase="confirm", repeat=1)
        (row,) = store.read("s", 2)
    assert (row.phase, row.repeat, row.index, row.p95_ms) == ("confirm", 1, 5, 21.0)
    assert row.failures_by_code == {"model_server_overloaded": 2, "timeout": 1}


def _curve_point(step: int, rate: float, passed: bool) -> dict:
    """Shaped like tuner.capacity's CurvePoint.as_dict(), which the store reads."""
    return {
        "step": step,
        "target_rps": rate,
        "offered_rps": rate * 0.99,
        "completed_rps": rate * 0.98,
        "goodput_rps": rate * 0.97,
        "p50_ms": 5.0,
        "p95_ms": 12.5 if passed else 80.0,
        "p99_ms": None,
        "error_rate": 0.0,
        "requests": int(rate * 6),
        "failures": 0,
        "failures_by_code": {},
        "in_flight_limit_hit": not passed,
        "mean_batch_size": 3.5,
        "cpu_model_server_percent": 120.0,
        "cpu_service_percent": 60.0,
        "cpu_load_generator_percent": None,
        "duration_s": 6.0,
        "passed": passed,
        "reason": None if passed else "p95 80.0 ms > SLO 25 ms",
    }


def test_capacity_steps_round_trip_and_intervals_carry_their_step(tmp_path: Path) -> None:
    with SampleStore(f"sqlite:///{tmp_path / 'tuning.db'}") as store:
        curve = [_curve_point(0, 400.0, True), _curve_point(1, 800.0, False)]
        store.write_steps("s", 2, curve)
        store.write_steps("s", 2, curve[1:])  # idempotent
        store.write("s", 2, _intervals(3), step=1)
        steps = store.read_steps("s", 2)
        intervals = store.read("s", 2)
    assert [(s.step, s.target_rps, s.passed) for s in steps] == [
        (0, 400.0, True),
        (1, 800.0, False),
    ]
    assert steps[1].reason == "p95 80.0 ms > SLO 25 ms" and steps[1].in_flight_limit_hit
    assert steps[0].p99_ms is None and steps[0].mean_batch_size == 3.5
    assert {i.step for i in intervals} == {1}


def test_a_database_from_before_capacity_mode_gains_the_step_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # the table as the previous release created it
        conn.execute(
            f"CREATE TABLE {SAMPLES_TABLE} (id INTEGER PRIMARY KEY, study_name VARCHAR(512), "
            "trial_number INTEGER, phase VARCHAR(32), repeat INTEGER, idx INTEGER, t_s FLOAT, "
            "in_warmup BOOLEAN, requests INTEGER, failures INTEGER, rps FLOAT, p50_ms FLOAT, "
            "p95_ms FLOAT, p99_ms FLOAT, failures_by_code JSON)"
        )
        conn.execute(
            f"INSERT INTO {SAMPLES_TABLE} (study_name, trial_number, phase, repeat, idx, t_s, "
            "in_warmup, requests, failures, rps, p50_ms, p95_ms, p99_ms, failures_by_code) "
            "VALUES ('old', 0, 'trial', 0, 0, 1.0, 0, 50, 0, 50.0, 5, 9, 11, '{}')"
        )
    with SampleStore(f"sqlite:///{db}") as store:
        (old,) = store.read("old")
        assert old.rps == 50.0 and old.step is None
        store.write("old", 1, _intervals(1), step=0)
        assert [s.step for s in store.read("old", 1)] == [0]
    with SampleStore(f"sqlite:///{db}") as store:  # opening again changes nothing
        assert len(store.read("old")) == 2


def test_every_row_names_the_worker_that_wrote_it(database_url: str) -> None:
    with SampleStore(database_url, worker="host-a:1") as a, SampleStore(database_url) as b:
        a.write("s", 0, _intervals(2))
        b.write("s", 1, _intervals(1))
        stored = a.read("s")
    assert [(s.trial_number, s.worker) for s in stored] == [
        (0, "host-a:1"),
        (0, "host-a:1"),
        (1, None),
    ]


def test_a_database_from_before_parallel_tuners_gains_the_worker_column(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:  # as the release with capacity mode created it
        conn.execute(
            f"CREATE TABLE {SAMPLES_TABLE} (id INTEGER PRIMARY KEY, study_name VARCHAR(512), "
            "trial_number INTEGER, phase VARCHAR(32), repeat INTEGER, idx INTEGER, t_s FLOAT, "
            "in_warmup BOOLEAN, requests INTEGER, failures INTEGER, rps FLOAT, p50_ms FLOAT, "
            "p95_ms FLOAT, p99_ms FLOAT, failures_by_code JSON, step INTEGER)"
        )
        conn.execute(
            f"INSERT INTO {SAMPLES_TABLE} (study_name, trial_number, phase, repeat, idx, t_s, "
            "in_warmup, requests, failures, rps, p50_ms, p95_ms, p99_ms, failures_by_code, step) "
            "VALUES ('old', 0, 'trial', 0, 0, 1.0, 0, 50, 0, 50.0, 5, 9, 11, '{}', 2)"
        )
    with SampleStore(f"sqlite:///{db}", worker="w") as store:
        store.write("old", 1, _intervals(1))
        assert [(s.step, s.worker) for s in store.read("old")] == [(2, None), (None, "w")]

"""Per-interval load samples of every trial, in a table of our own next to Optuna's.

Optuna stores one value per trial step (intermediate values); reports need the whole interval
record (requests, failures by code, percentiles, warm-up flag) of trials and of confirmation
repeats. The table lives in the same database as the study so one URL (and one file to copy)
holds everything. It has its own SQLAlchemy metadata: Optuna's `create_all` and its alembic
migrations only know their own tables and never touch this one, and this module never touches
theirs.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    Index,
    Integer,
    String,
    create_engine,
    delete,
    inspect,
    select,
    text,
)
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from tuner.storage import sqlite, steps
from tuner.storage.errors import as_storage_error
from tuner.storage.retry import Retrier
from tuner.storage.steps import StoredStep

__all__ = ["SAMPLES_TABLE", "IntervalSampleLike", "SampleStore", "StoredSample", "StoredStep"]

SAMPLES_TABLE = "tuner_load_samples"


class IntervalSampleLike(Protocol):
    """What write() reads from a sample: tuner.load's IntervalSample has exactly these."""

    index: int
    t_s: float
    in_warmup: bool
    requests: int
    failures: int
    rps: float
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    failures_by_code: dict[str, int]


@dataclass(frozen=True)
class StoredSample:
    """One stored interval; it is itself IntervalSample-like, so it can be written again."""

    study_name: str
    trial_number: int
    phase: str
    repeat: int
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
    step: int | None = None  # the capacity search's step the interval belongs to
    worker: str | None = None  # the tuner that measured it (None in older databases)


class _Base(DeclarativeBase):
    pass


class _SampleRow(_Base):
    __tablename__ = SAMPLES_TABLE
    __table_args__ = (
        Index("ix_tuner_load_samples_study_trial", "study_name", "trial_number"),
        Index(
            "ux_tuner_load_samples_key",
            "study_name",
            "trial_number",
            "phase",
            "repeat",
            "idx",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_name: Mapped[str] = mapped_column(String(512))
    trial_number: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32))
    repeat: Mapped[int] = mapped_column(Integer)
    idx: Mapped[int] = mapped_column(Integer)
    t_s: Mapped[float] = mapped_column(Float)
    in_warmup: Mapped[bool] = mapped_column(Boolean)
    requests: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    rps: Mapped[float] = mapped_column(Float)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    failures_by_code: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Added with capacity mode; older databases get the column on open (see _migrate).
    step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Added with parallel tuners (`--worker`); older databases get it on open too.
    worker: Mapped[str | None] = mapped_column(String(256), nullable=True)


def _opt_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _row(
    study_name: str,
    trial_number: int,
    phase: str,
    repeat: int,
    s: Any,
    step: int | None,
    worker: str | None,
) -> dict[str, Any]:
    return {
        "step": None if step is None else int(step),
        "worker": worker,
        "study_name": study_name,
        "trial_number": trial_number,
        "phase": phase,
        "repeat": repeat,
        "idx": int(s.index),
        "t_s": float(s.t_s),
        "in_warmup": bool(s.in_warmup),
        "requests": int(s.requests),
        "failures": int(s.failures),
        "rps": float(s.rps),
        "p50_ms": _opt_float(s.p50_ms),
        "p95_ms": _opt_float(s.p95_ms),
        "p99_ms": _opt_float(s.p99_ms),
        "failures_by_code": {str(k): int(v) for k, v in dict(s.failures_by_code or {}).items()},
    }


class SampleStore:
    """Reads and writes `tuner_load_samples` in the database at `url` (created if missing).
    Every row written carries `worker`, the name of the tuner that measured it."""

    def __init__(
        self,
        url: str,
        *,
        busy_timeout_s: float = sqlite.DEFAULT_BUSY_TIMEOUT_S,
        worker: str | None = None,
        retry_s: float = 0.0,
    ):
        self._url = url
        self.worker = worker
        self._busy_timeout_s = busy_timeout_s
        self._retry = Retrier(url, retry_s)  # a database that stops answering for a while
        try:
            kwargs: dict[str, Any] = {"pool_pre_ping": True}
            if sqlite.is_sqlite(url):
                sqlite.prepare_file(url, busy_timeout_s)
                kwargs = sqlite.engine_kwargs(url, busy_timeout_s)
            self._engine = create_engine(url, **kwargs)
            _Base.metadata.create_all(self._engine)
            steps.create(self._engine)
            _migrate(self._engine)
        except (sa_exc.SQLAlchemyError, sqlite3.Error, ImportError, OSError) as exc:
            raise as_storage_error(exc, url, busy_timeout_s=busy_timeout_s) from None

    def write(
        self,
        study_name: str,
        trial_number: int,
        samples: Sequence[IntervalSampleLike],
        *,
        phase: str = "trial",
        repeat: int = 0,
        step: int | None = None,
    ) -> None:
        """Store samples; a sample with the same (study, trial, phase, repeat, index) is replaced.

        Replacing makes writing idempotent, and lets the tuner write interval by interval as
        they stream in or all at once at the end of the trial. `step` names the capacity search's
        step the samples belong to; indexes stay unique per trial, phase and repeat, across
        steps.
        """
        if not phase:
            raise ValueError("phase must be a non-empty string such as 'trial' or 'confirm'")
        rows = [
            _row(study_name, int(trial_number), phase, int(repeat), s, step, self.worker)
            for s in samples
        ]
        if not rows:
            return
        key = (
            (_SampleRow.study_name == study_name)
            & (_SampleRow.trial_number == int(trial_number))
            & (_SampleRow.phase == phase)
            & (_SampleRow.repeat == int(repeat))
        )

        def replace() -> None:
            with Session(self._engine) as session, session.begin():
                session.execute(
                    delete(_SampleRow).where(key, _SampleRow.idx.in_([r["idx"] for r in rows]))
                )
                session.add_all([_SampleRow(**r) for r in rows])

        with self._errors():
            self._retry(replace, "samples.write")

    def read(
        self, study_name: str, trial_number: int | None = None, *, phase: str | None = None
    ) -> list[StoredSample]:
        """Samples of a study (or of one trial), ordered by trial, phase, repeat and index."""
        query = select(_SampleRow).where(_SampleRow.study_name == study_name)
        if trial_number is not None:
            query = query.where(_SampleRow.trial_number == int(trial_number))
        if phase is not None:
            query = query.where(_SampleRow.phase == phase)
        query = query.order_by(
            _SampleRow.trial_number, _SampleRow.phase, _SampleRow.repeat, _SampleRow.idx
        )

        def fetch() -> list[StoredSample]:
            with Session(self._engine) as session:
                return [_stored(row) for row in session.scalars(query)]

        with self._errors():
            return self._retry(fetch, "samples.read")

    def write_steps(
        self,
        study_name: str,
        trial_number: int,
        points: Sequence[dict[str, Any]],
        *,
        phase: str = "trial",
        repeat: int = 0,
    ) -> None:
        """Store a capacity curve (one dict per step, as in the `capacity_curve` user attr)."""
        with self._errors():
            self._retry(
                lambda: steps.write(self._engine, study_name, trial_number, points, phase, repeat),
                "steps.write",
            )

    def read_steps(
        self, study_name: str, trial_number: int | None = None, *, phase: str | None = None
    ) -> list[StoredStep]:
        with self._errors():
            return self._retry(
                lambda: steps.read(self._engine, study_name, trial_number, phase), "steps.read"
            )

    @contextlib.contextmanager
    def _errors(self) -> Iterator[None]:
        """A database error of any read or write, as the one-sentence StorageError."""
        try:
            yield
        except (sa_exc.SQLAlchemyError, sqlite3.Error) as exc:
            raise as_storage_error(exc, self._url, busy_timeout_s=self._busy_timeout_s) from None

    def close(self) -> None:
        self._engine.dispose()

    def __enter__(self) -> SampleStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _stored(row: _SampleRow) -> StoredSample:
    return StoredSample(
        study_name=row.study_name,
        trial_number=row.trial_number,
        phase=row.phase,
        repeat=row.repeat,
        index=row.idx,
        t_s=row.t_s,
        in_warmup=row.in_warmup,
        requests=row.requests,
        failures=row.failures,
        rps=row.rps,
        p50_ms=row.p50_ms,
        p95_ms=row.p95_ms,
        p99_ms=row.p99_ms,
        failures_by_code=dict(row.failures_by_code or {}),
        step=row.step,
        worker=row.worker,
    )


ADDED_COLUMNS = {"step": "INTEGER", "worker": "VARCHAR(256)"}


def _migrate(engine: Any) -> None:
    """A database written before capacity mode has no `step` column, one written before
    parallel tuners no `worker` column: add them (nullable, so old rows stay as they were and
    read back with None). Tuners opening one old database at once may race to add a column;
    the loser finds it there."""
    columns = {c["name"] for c in inspect(engine).get_columns(SAMPLES_TABLE)}
    for name, sql_type in ADDED_COLUMNS.items():
        if name in columns:
            continue
        try:
            with engine.begin() as connection:
                connection.execute(
                    text(f"ALTER TABLE {SAMPLES_TABLE} ADD COLUMN {name} {sql_type}")
                )
        except sa_exc.SQLAlchemyError:
            if name not in {c["name"] for c in inspect(engine).get_columns(SAMPLES_TABLE)}:
                raise

"""The capacity curve of every trial: one row per load step, in `tuner_capacity_steps`.

The interval rows in `tuner_load_samples` say how each second went; a step's verdict needs
the figures of its whole window (offered and achieved rate, goodput, percentiles over every
request, the mean executed batch size and CPU from before/after scrapes), which are not sums
of intervals. One row per step keeps them queryable next to the intervals, e.g.
`select trial_number, step, target_rps, goodput_rps, p95_ms, passed from tuner_capacity_steps`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import JSON, Boolean, Float, Index, Integer, String, delete, select
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

STEPS_TABLE = "tuner_capacity_steps"
_FIGURES = (
    "target_rps",
    "offered_rps",
    "completed_rps",
    "goodput_rps",
    "p50_ms",
    "p95_ms",
    "p99_ms",
    "error_rate",
    "mean_batch_size",
    "cpu_model_server_percent",
    "cpu_service_percent",
    "cpu_load_generator_percent",
    "duration_s",
)


class _Base(DeclarativeBase):
    pass


class _StepRow(_Base):
    __tablename__ = STEPS_TABLE
    __table_args__ = (
        Index(
            "ux_tuner_capacity_steps_key",
            "study_name",
            "trial_number",
            "phase",
            "repeat",
            "step",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    study_name: Mapped[str] = mapped_column(String(512))
    trial_number: Mapped[int] = mapped_column(Integer)
    phase: Mapped[str] = mapped_column(String(32))
    repeat: Mapped[int] = mapped_column(Integer)
    step: Mapped[int] = mapped_column(Integer)
    target_rps: Mapped[float] = mapped_column(Float)
    offered_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    goodput_rps: Mapped[float | None] = mapped_column(Float, nullable=True)
    p50_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p95_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    p99_ms: Mapped[float | None] = mapped_column(Float, nullable=True)
    error_rate: Mapped[float | None] = mapped_column(Float, nullable=True)
    mean_batch_size: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_model_server_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_service_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_load_generator_percent: Mapped[float | None] = mapped_column(Float, nullable=True)
    duration_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    requests: Mapped[int] = mapped_column(Integer)
    failures: Mapped[int] = mapped_column(Integer)
    in_flight_limit_hit: Mapped[bool] = mapped_column(Boolean)
    passed: Mapped[bool] = mapped_column(Boolean)
    reason: Mapped[str | None] = mapped_column(String(2000), nullable=True)
    failures_by_code: Mapped[dict[str, Any]] = mapped_column(JSON)


@dataclass(frozen=True)
class StoredStep:
    study_name: str
    trial_number: int
    phase: str
    repeat: int
    step: int
    target_rps: float
    offered_rps: float | None
    completed_rps: float | None
    goodput_rps: float | None
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    error_rate: float | None
    mean_batch_size: float | None
    cpu_model_server_percent: float | None
    cpu_service_percent: float | None
    cpu_load_generator_percent: float | None
    duration_s: float | None
    requests: int
    failures: int
    in_flight_limit_hit: bool
    passed: bool
    reason: str | None
    failures_by_code: dict[str, int] = field(default_factory=dict)


def create(engine: Any) -> None:
    _Base.metadata.create_all(engine)


def _opt(value: Any) -> float | None:
    return None if value is None else float(value)


def write(
    engine: Any,
    study_name: str,
    trial_number: int,
    points: Sequence[dict[str, Any]],
    phase: str,
    repeat: int,
) -> None:
    """Store steps; a step already stored under the same key is replaced (idempotent)."""
    rows = []
    for p in points:
        row = {k: _opt(p.get(k)) for k in _FIGURES}
        row.update(
            study_name=study_name,
            trial_number=int(trial_number),
            phase=phase,
            repeat=int(repeat),
            step=int(p["step"]),
            target_rps=float(p["target_rps"]),
            requests=int(p.get("requests") or 0),
            failures=int(p.get("failures") or 0),
            in_flight_limit_hit=bool(p.get("in_flight_limit_hit")),
            passed=bool(p.get("passed")),
            reason=p.get("reason"),
            failures_by_code={str(k): int(v) for k, v in (p.get("failures_by_code") or {}).items()},
        )
        rows.append(row)
    if not rows:
        return
    key = (
        (_StepRow.study_name == study_name)
        & (_StepRow.trial_number == int(trial_number))
        & (_StepRow.phase == phase)
        & (_StepRow.repeat == int(repeat))
    )
    with Session(engine) as session, session.begin():
        session.execute(delete(_StepRow).where(key, _StepRow.step.in_([r["step"] for r in rows])))
        session.add_all([_StepRow(**r) for r in rows])


def read(
    engine: Any, study_name: str, trial_number: int | None, phase: str | None
) -> list[StoredStep]:
    query = select(_StepRow).where(_StepRow.study_name == study_name)
    if trial_number is not None:
        query = query.where(_StepRow.trial_number == int(trial_number))
    if phase is not None:
        query = query.where(_StepRow.phase == phase)
    query = query.order_by(_StepRow.trial_number, _StepRow.phase, _StepRow.repeat, _StepRow.step)
    with Session(engine) as session:
        return [
            StoredStep(
                **{
                    name: getattr(row, name)
                    for name in StoredStep.__dataclass_fields__
                    if name != "failures_by_code"
                },
                failures_by_code=dict(row.failures_by_code or {}),
            )
            for row in session.scalars(query)
        ]

"""SQLAlchemy models of the validator's tables. Alembic (``alembic_scripts/``) owns the schema;
a test checks that ``alembic upgrade head`` produces exactly these models.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _enum(enum_cls: type[StrEnum], name: str) -> Enum:
    return Enum(enum_cls, name=name, values_callable=lambda e: [m.value for m in e])


RUN_STATUS = _enum(RunStatus, "weather_run_status")
RUN_MODE = _enum(RunMode, "weather_run_mode")
RESPONSE_STATUS = _enum(MinerResponseStatus, "weather_response_status")
JOB_STATUS = _enum(JobStatus, "job_status")
SCORE_KIND = _enum(ScoreKind, "weather_score_kind")

TIMESTAMP = DateTime(timezone=True)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class WeatherForecastRun(Base):
    __tablename__ = "weather_forecast_runs"
    __table_args__ = (UniqueConstraint("gfs_init_time", "mode", name="uq_runs_init_mode"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gfs_init_time: Mapped[datetime] = mapped_column(TIMESTAMP)
    mode: Mapped[RunMode] = mapped_column(RUN_MODE, server_default=RunMode.LIVE.value)
    status: Mapped[RunStatus] = mapped_column(RUN_STATUS, server_default=RunStatus.CREATED.value)
    commit_deadline: Mapped[datetime] = mapped_column(TIMESTAMP)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


class WeatherMinerResponse(Base):
    __tablename__ = "weather_miner_responses"
    __table_args__ = (
        UniqueConstraint("run_id", "miner_hotkey", name="uq_responses_run_hotkey"),
        Index("ix_responses_status", "status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("weather_forecast_runs.id", ondelete="CASCADE")
    )
    miner_hotkey: Mapped[str] = mapped_column(String(64))
    miner_uid: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[MinerResponseStatus] = mapped_column(
        RESPONSE_STATUS, server_default=MinerResponseStatus.CREATED.value
    )
    miner_job_id: Mapped[str | None] = mapped_column(String(128))
    inference_started_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    manifest_hash: Mapped[str | None] = mapped_column(String(64))
    manifest_fetched_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    failure_reason: Mapped[str | None] = mapped_column(Text)
    failed_step: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class Miner(Base):
    """The subnet's neurons as last seen in the metagraph, keyed by hotkey."""

    __tablename__ = "miners"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    uid: Mapped[int] = mapped_column(Integer, unique=True)
    coldkey: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str | None] = mapped_column(String(64))
    port: Mapped[int | None] = mapped_column(Integer)
    stake: Mapped[float] = mapped_column(Double, server_default=text("0"))
    validator_permit: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    registered_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    last_seen: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class WeatherMinerScore(Base):
    """One scored component; surface variables use level 0 so no key column is NULL."""

    __tablename__ = "weather_miner_scores"
    __table_args__ = (
        UniqueConstraint(
            "run_id", "miner_hotkey", "kind", "variable", "level", "lead_hours", "metric",
            name="uq_scores_component",
        ),
        Index("ix_scores_hotkey_kind", "miner_hotkey", "kind"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    run_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("weather_forecast_runs.id", ondelete="CASCADE")
    )
    miner_hotkey: Mapped[str] = mapped_column(String(64))
    kind: Mapped[ScoreKind] = mapped_column(SCORE_KIND)
    variable: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(SmallInteger)
    lead_hours: Mapped[int] = mapped_column(SmallInteger)
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Double)
    missing: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class ValidatorJob(Base):
    """The durable job queue (gaia.jobs). Singleton keys are unique among live jobs only."""

    __tablename__ = "validator_jobs"
    __table_args__ = (
        Index(
            "uq_validator_jobs_live_singleton",
            "singleton_key",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
        Index(
            "ix_validator_jobs_claimable",
            "run_at",
            "id",
            postgresql_where=text("status = 'queued'"),
        ),
        Index(
            "ix_validator_jobs_leases",
            "lease_until",
            postgresql_where=text("status = 'running'"),
        ),
        Index("ix_validator_jobs_finished", "finished_at"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    job_type: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    status: Mapped[JobStatus] = mapped_column(JOB_STATUS, server_default=JobStatus.QUEUED.value)
    singleton_key: Mapped[str | None] = mapped_column(Text)
    run_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    max_attempts: Mapped[int] = mapped_column(Integer)
    timeout_s: Mapped[float] = mapped_column(Double)
    locked_by: Mapped[str | None] = mapped_column(String(128))
    lease_until: Mapped[datetime | None] = mapped_column(TIMESTAMP)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


class ValidatorPause(Base):
    """The pause switch every validator process reads (:mod:`gaia.validator.pause`): a row
    while paused, with when and why; no row while running. At most one row."""

    __tablename__ = "validator_pause"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False,
                                    server_default=text("1"))
    paused_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))

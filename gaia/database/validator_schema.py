"""SQLAlchemy models of the validator's tables. Alembic (``alembic_scripts/``) owns the schema;
a test checks that ``alembic upgrade head`` produces exactly these models and the job queue's
(:mod:`gaia.jobs.schema`), all on the shared :class:`~gaia.database.base.Base`.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from gaia.database.base import TIMESTAMP, Base, sql_enum
from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus

RUN_STATUS = sql_enum(RunStatus, "weather_run_status")
RUN_MODE = sql_enum(RunMode, "weather_run_mode")
RESPONSE_STATUS = sql_enum(MinerResponseStatus, "weather_response_status")
SCORE_KIND = sql_enum(ScoreKind, "weather_score_kind")


class WeatherForecastRun(Base):
    __tablename__ = "weather_forecast_runs"
    __table_args__ = (UniqueConstraint("gfs_init_time", "mode", name="uq_runs_init_mode"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    gfs_init_time: Mapped[datetime] = mapped_column(TIMESTAMP)
    mode: Mapped[RunMode] = mapped_column(RUN_MODE, server_default=RunMode.LIVE.value)
    status: Mapped[RunStatus] = mapped_column(RUN_STATUS, server_default=RunStatus.CREATED.value)
    commit_deadline: Mapped[datetime] = mapped_column(TIMESTAMP)
    # the grid every commitment of the run is checked against, fixed when the run is made
    grid_deg: Mapped[float] = mapped_column(Double)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())
    completed_at: Mapped[datetime | None] = mapped_column(TIMESTAMP)


class WeatherMinerResponse(Base):
    __tablename__ = "weather_miner_responses"
    __table_args__ = (
        UniqueConstraint("run_id", "miner_hotkey", name="uq_responses_run_hotkey"),
        Index("ix_responses_status", "status"),
        CheckConstraint("num_nulls(day1_score, day1_passed, day1_clone) IN (0, 3)",
                        name="day1_verdict"),
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
    # the day-1 verdict (scoring.day1.Day1Verdict): all NULL until day-1 is scored, written
    # with the move to day1_scored; the roll-up reads it from here
    day1_score: Mapped[float | None] = mapped_column(Double)
    day1_passed: Mapped[bool | None] = mapped_column(Boolean)
    day1_clone: Mapped[bool | None] = mapped_column(Boolean)
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
    created_at: Mapped[datetime] = mapped_column(TIMESTAMP, server_default=func.now())


class ValidatorPause(Base):
    """The pause switch every validator process reads (:mod:`gaia.validator.pause`): a row
    while paused, with when and why; no row while running. At most one row."""

    __tablename__ = "validator_pause"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False,
                                    server_default=text("1"))
    paused_at: Mapped[datetime] = mapped_column(TIMESTAMP)
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))

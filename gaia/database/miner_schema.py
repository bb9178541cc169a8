"""SQLAlchemy models of the miner's tables (SQLite by default, PostgreSQL when configured).

The miner has no Alembic: its tables are created with ``MinerBase.metadata.create_all`` when
the miner starts (:func:`gaia.miner.database.MinerDatabase.create_tables`). They hold only
the miner's own jobs and short-lived replay-protection nonces, nothing that needs migrating
in place; a schema change ships with a new table name.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import BigInteger, DateTime, Enum, Index, Integer, MetaData, String, Text
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the miner stores UTC-aware times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class MinerBase(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class MinerJob(MinerBase):
    """One forecast job: this miner's forecast from one GFS cycle (id from ``job_id_for``)."""

    __tablename__ = "miner_forecast_jobs"

    job_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    miner_hotkey: Mapped[str] = mapped_column(String(64))
    gfs_init_time: Mapped[datetime] = mapped_column(UtcDateTime())
    model: Mapped[str] = mapped_column(String(200))
    status: Mapped[MinerJobStatus] = mapped_column(
        Enum(
            MinerJobStatus,
            native_enum=False,
            length=32,
            name="miner_job_status",
            values_callable=lambda e: [m.value for m in e],
        )
    )
    leads_done: Mapped[int] = mapped_column(Integer, default=0)
    leads_total: Mapped[int] = mapped_column(Integer)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    manifest_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    requested_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), default=None)

    __table_args__ = (
        Index("ix_miner_forecast_jobs_status", "status"),
        Index("ix_miner_forecast_jobs_finished_at", "finished_at"),
    )


class AuthNonce(MinerBase):
    """An accepted (hotkey, nonce) of a signed request; the primary key refuses replays.

    Rows only need to outlive the freshness window; expired ones are deleted periodically.
    """

    __tablename__ = "miner_auth_nonces"

    hotkey: Mapped[str] = mapped_column(String(64), primary_key=True)
    nonce_ns: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)

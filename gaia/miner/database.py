"""The miner's queries: forecast jobs and replay nonces, on SQLite or PostgreSQL.

Status changes are conditional updates (``WHERE status = :from``), so a late writer never
overwrites a newer state. Rows are returned as frozen :class:`JobRecord` snapshots.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import delete, event, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine

from gaia.database.miner_schema import AuthNonce, MinerBase, MinerJob
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus
from gaia.tasks.defined_tasks.weather.retention import Cutoff

UNFINISHED = (MinerJobStatus.FETCHING_INPUTS, MinerJobStatus.INFERENCE_RUNNING)
FINISHED = (MinerJobStatus.FORECAST_READY, MinerJobStatus.FAILED)


def database_url_for(database_url: str | None, data_dir: Path) -> str:
    """The configured URL, or a SQLite file under the miner's data directory."""
    if database_url:
        if database_url.startswith(("postgresql://", "postgres://")):
            return "postgresql+asyncpg://" + database_url.split("://", 1)[1]
        return database_url
    return f"sqlite+aiosqlite:///{data_dir / 'miner.sqlite3'}"


@dataclass(frozen=True)
class JobRecord:
    job_id: str
    miner_hotkey: str
    gfs_init_time: datetime
    model: str
    status: MinerJobStatus
    leads_done: int
    leads_total: int
    attempts: int
    error: str | None
    manifest_hash: str | None
    requested_by: str
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None

    @classmethod
    def of(cls, row: MinerJob) -> JobRecord:
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.execute(
        "PRAGMA synchronous=NORMAL"
    )  # WAL: survives process crashes, no fsync per commit
    cursor.close()


class MinerDatabase:
    """Engine and queries of the miner's tables."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(url)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def create_tables(self) -> None:
        """Create the miner's tables if missing (the miner has no migrations)."""
        async with self.engine.begin() as conn:
            await conn.run_sync(MinerBase.metadata.create_all)

    async def close(self) -> None:
        await self.engine.dispose()

    async def get_or_create_job(self, job: MinerJob) -> tuple[JobRecord, bool]:
        """Insert ``job`` unless its id exists; returns the stored row and whether it is new."""
        async with self._sessions() as session:
            session.add(job)
            try:
                await session.commit()
                return JobRecord.of(job), True
            except IntegrityError:
                await session.rollback()
        existing = await self.get_job(job.job_id)
        if existing is None:
            raise LookupError(f"job {job.job_id} vanished while being created")
        return existing, False

    async def get_job(self, job_id: str) -> JobRecord | None:
        async with self._sessions() as session:
            row = await session.get(MinerJob, job_id)
            return None if row is None else JobRecord.of(row)

    async def count_by_status(self) -> dict[MinerJobStatus, int]:
        """Jobs by status (statuses without jobs are left out)."""
        async with self._sessions() as session:
            rows = await session.execute(
                select(MinerJob.status, func.count()).group_by(MinerJob.status)
            )
            return {MinerJobStatus(status): int(n) for status, n in rows}

    async def jobs_with_status(self, statuses: Sequence[MinerJobStatus]) -> list[JobRecord]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MinerJob).where(MinerJob.status.in_(statuses)).order_by(MinerJob.created_at)
            )
            return [JobRecord.of(r) for r in rows]

    async def finished_within(
        self, statuses: Sequence[MinerJobStatus], cutoff: Cutoff
    ) -> list[JobRecord]:
        """Finished jobs in ``statuses`` that ``cutoff`` covers (init time and finish time
        both before it), oldest init first."""
        async with self._sessions() as session:
            rows = await session.scalars(
                select(MinerJob)
                .where(
                    MinerJob.status.in_(statuses),
                    MinerJob.gfs_init_time < cutoff.init_before,
                    MinerJob.finished_at < cutoff.finished_before,
                )
                .order_by(MinerJob.gfs_init_time)
            )
            return [JobRecord.of(r) for r in rows]

    async def _update(
        self, job_id: str, from_statuses: Sequence[MinerJobStatus], **values: Any
    ) -> bool:
        async with self._sessions() as session:
            result = await session.execute(
                update(MinerJob)
                .where(MinerJob.job_id == job_id, MinerJob.status.in_(from_statuses))
                .values(**values)
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def restart_failed(self, job_id: str, attempts: int, now: datetime) -> bool:
        """Put a failed job that has run ``attempts`` times back to fetching_inputs; False if
        it is not that job any more (restarted meanwhile, or not failed)."""
        async with self._sessions() as session:
            result = await session.execute(
                update(MinerJob)
                .where(
                    MinerJob.job_id == job_id,
                    MinerJob.status == MinerJobStatus.FAILED,
                    MinerJob.attempts == attempts,
                )
                .values(
                    status=MinerJobStatus.FETCHING_INPUTS,
                    error=None,
                    leads_done=0,
                    finished_at=None,
                    updated_at=now,
                )
            )
            await session.commit()
            return bool(result.rowcount)  # type: ignore[attr-defined]

    async def begin_attempt(self, job_id: str, now: datetime) -> bool:
        """Count a new run of an unfinished job and reset its progress."""
        return await self._update(
            job_id,
            UNFINISHED,
            status=MinerJobStatus.FETCHING_INPUTS,
            attempts=MinerJob.attempts + 1,
            leads_done=0,
            updated_at=now,
        )

    async def mark_inference_running(self, job_id: str, leads_total: int, now: datetime) -> bool:
        return await self._update(
            job_id,
            [MinerJobStatus.FETCHING_INPUTS],
            status=MinerJobStatus.INFERENCE_RUNNING,
            leads_total=leads_total,
            updated_at=now,
        )

    async def record_progress(self, job_id: str, leads_done: int, now: datetime) -> bool:
        return await self._update(
            job_id, [MinerJobStatus.INFERENCE_RUNNING], leads_done=leads_done, updated_at=now
        )

    async def mark_ready(self, job_id: str, manifest_hash: str, now: datetime) -> bool:
        return await self._update(
            job_id,
            [MinerJobStatus.INFERENCE_RUNNING],
            status=MinerJobStatus.FORECAST_READY,
            manifest_hash=manifest_hash,
            finished_at=now,
            updated_at=now,
        )

    async def mark_failed(self, job_id: str, error: str, now: datetime) -> bool:
        return await self._update(
            job_id,
            UNFINISHED,
            status=MinerJobStatus.FAILED,
            error=error,
            finished_at=now,
            updated_at=now,
        )

    async def delete_job(self, job_id: str) -> None:
        async with self._sessions() as session:
            await session.execute(delete(MinerJob).where(MinerJob.job_id == job_id))
            await session.commit()

    async def remember_nonce(self, hotkey: str, nonce_ns: int, expires_at: datetime) -> bool:
        """Record an accepted nonce; False if (hotkey, nonce) was already recorded (a replay)."""
        async with self._sessions() as session:
            session.add(AuthNonce(hotkey=hotkey, nonce_ns=nonce_ns, expires_at=expires_at))
            try:
                await session.commit()
            except IntegrityError:
                await session.rollback()
                return False
        return True

    async def forget_nonces_before(self, now: datetime) -> int:
        async with self._sessions() as session:
            result = await session.execute(delete(AuthNonce).where(AuthNonce.expires_at < now))
            await session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

"""Queries of the validator's run retention (:mod:`gaia.validator.run_retention`).

A run is *purgeable* at a cutoff when it is finished (``completed`` or ``error``), its last
moment (its completion, else its GFS init time) is before the cutoff, it is not one of the
runs the weights read (:func:`~gaia.validator.database.validator_database_manager.weights_window`),
and no live job (queued or running) names it. What hangs off a run: its responses and scores
(foreign keys, ``ON DELETE CASCADE``) and its finished jobs (``payload.run_id``).

A purge is a series of bounded transactions (:func:`purge_step`): each locks the purgeable
runs it works on (``FOR UPDATE``, re-checking the rule) and deletes at most ``batch`` rows of
one table, scores first, then responses, then finished jobs, then the runs themselves. A run
that an operator moves back to work meanwhile stops being purgeable and keeps what it has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, Select, String, cast, delete, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.base import Base
from gaia.database.validator_schema import (
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.validator.database.validator_database_manager import weights_window

R = WeatherForecastRun
PURGEABLE_STATUSES = (RunStatus.COMPLETED, RunStatus.ERROR)
LIVE_JOB_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_JOB_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)

RUNS = WeatherForecastRun.__tablename__
RESPONSES = WeatherMinerResponse.__tablename__
SCORES = WeatherMinerScore.__tablename__
JOBS = ValidatorJob.__tablename__
TABLES = (RUNS, RESPONSES, SCORES, JOBS)
_Row = WeatherMinerScore | WeatherMinerResponse | ValidatorJob


@dataclass(frozen=True)
class RunMark:
    run_id: int
    gfs_init_time: datetime
    mode: RunMode
    status: RunStatus
    last_moment: datetime  # what its age is counted from


@dataclass(frozen=True)
class PurgePlan:
    """What a purge at ``cutoff`` would remove: rows per table, and the runs' ends."""

    cutoff: datetime
    counts: dict[str, int]
    oldest: RunMark | None  # by last moment
    newest: RunMark | None


def _last_moment() -> ColumnElement[datetime]:
    return func.greatest(R.gfs_init_time, func.coalesce(R.completed_at, R.gfs_init_time))


def _job_run_id() -> ColumnElement[str]:
    return ValidatorJob.payload["run_id"].astext


def purgeable(cutoff: datetime, window: int) -> Select[int]:
    """The ids of the runs purgeable at ``cutoff``, oldest first."""
    in_window = weights_window(window).subquery()
    live_job = select(ValidatorJob.id).where(
        ValidatorJob.status.in_(LIVE_JOB_STATUSES), _job_run_id() == cast(R.id, String))
    return (
        select(R.id)
        .where(R.status.in_(PURGEABLE_STATUSES), _last_moment() < cutoff,
               R.id.not_in(select(in_window.c.id)), ~exists(live_job))
        .order_by(_last_moment(), R.id)
    )


async def plan(session: AsyncSession, cutoff: datetime, window: int) -> PurgePlan:
    """Count what a purge at ``cutoff`` would delete (reads only)."""
    ids = purgeable(cutoff, window).subquery()
    marks = [RunMark(*row) for row in await session.execute(
        select(R.id, R.gfs_init_time, R.mode, R.status, _last_moment())
        .where(R.id.in_(select(ids.c.id))).order_by(_last_moment(), R.id))]
    counts = {
        RUNS: len(marks),
        RESPONSES: await _count(session, WeatherMinerResponse,
                                WeatherMinerResponse.run_id.in_(select(ids.c.id))),
        SCORES: await _count(session, WeatherMinerScore,
                             WeatherMinerScore.run_id.in_(select(ids.c.id))),
        JOBS: await _count(session, ValidatorJob, ValidatorJob.status.in_(FINISHED_JOB_STATUSES),
                           _job_run_id().in_(select(cast(ids.c.id, String)))),
    }
    return PurgePlan(cutoff, counts, marks[0] if marks else None, marks[-1] if marks else None)


async def _count(session: AsyncSession, model: type[Base], *where: ColumnElement[bool]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def purge_step(
    session: AsyncSession, cutoff: datetime, window: int, batch: int,
) -> tuple[str, int] | None:
    """One bounded transaction of a purge: ``(table, rows deleted)``, at most ``batch`` rows;
    None when nothing is purgeable."""
    ids = list(await session.scalars(
        purgeable(cutoff, window).limit(batch).with_for_update(of=R)))
    if not ids:
        return None
    job_ids = [str(run_id) for run_id in ids]
    children: tuple[tuple[str, type[_Row], ColumnElement[bool]], ...] = (
        (SCORES, WeatherMinerScore, WeatherMinerScore.run_id.in_(ids)),
        (RESPONSES, WeatherMinerResponse, WeatherMinerResponse.run_id.in_(ids)),
        (JOBS, ValidatorJob, ValidatorJob.status.in_(FINISHED_JOB_STATUSES)
         & _job_run_id().in_(job_ids)),
    )
    for table, model, belongs in children:
        chunk = select(model.id).where(belongs).limit(batch).scalar_subquery()
        deleted = await session.execute(delete(model).where(model.id.in_(chunk)))
        if deleted.rowcount:  # type: ignore[attr-defined]
            return table, int(deleted.rowcount)  # type: ignore[attr-defined]
    deleted = await session.execute(delete(R).where(R.id.in_(ids)))
    return RUNS, int(deleted.rowcount)  # type: ignore[attr-defined]

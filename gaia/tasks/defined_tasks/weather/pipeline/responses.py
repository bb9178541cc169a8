"""Shared moves of one miner's response: enqueue its next job, fail it, roll the run up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.validator_schema import WeatherMinerResponse
from gaia.jobs.outcomes import INVALID_PREFIX
from gaia.jobs.queue import singleton_key
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import ResponsePayload
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, is_allowed
from gaia.validator.database import validator_database_manager as db

S = MinerResponseStatus


async def enqueue_next(
    ctx: PipelineContext,
    session: AsyncSession,
    job_type: WeatherJob,
    payload: ResponsePayload,
    *,
    run_at: datetime | None = None,
) -> None:
    await ctx.queue.enqueue(
        session, job_type, payload, run_at=run_at,
        singleton_key=singleton_key(job_type, run=payload.run_id, hotkey=payload.miner_hotkey),
    )


async def move(
    session: AsyncSession,
    payload: ResponsePayload,
    current: MinerResponseStatus,
    target: MinerResponseStatus,
    **fields: object,
) -> None:
    """Transition the response and roll the run's status up, in the caller's transaction."""
    await db.transition_response(session, payload.response_id, current, target, **fields)
    await db.refresh_run_status(session, payload.run_id)


async def fail_response(
    session: AsyncSession, payload: ResponsePayload, reason: str, step: str
) -> bool:
    """Mark the response failed from whatever status it is in, if that status allows it.

    Returns False when it is already terminal (or in a status that cannot fail)."""
    current = await session.scalar(
        select(WeatherMinerResponse.status)
        .where(WeatherMinerResponse.id == payload.response_id)
        .with_for_update()
    )
    if current is None or not is_allowed(current, S.FAILED):
        return False
    await move(session, payload, current, S.FAILED,
               failure_reason=reason[:2000], failed_step=step)
    return True


GiveUpHook = Callable[[AsyncSession, ResponsePayload, str], Awaitable[None]]


def give_up_as(step: str, summary: str) -> GiveUpHook:
    """A give-up hook that fails the response: an ``Invalid`` outcome keeps its own reason,
    running out of attempts is ``summary`` followed by the last error."""

    async def hook(session: AsyncSession, payload: ResponsePayload, reason: str) -> None:
        if reason.startswith(INVALID_PREFIX):
            reason = reason.removeprefix(INVALID_PREFIX)
        else:
            reason = f"{summary} ({reason})"
        await fail_response(session, payload, reason, step)

    return hook

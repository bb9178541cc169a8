"""One log line a minute with the validator's health: pause state, jobs by state, runs by
status."""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.database.validator_schema import WeatherForecastRun
from gaia.jobs.queue import job_counts
from gaia.validator.pause import pause_state

log = logging.getLogger("gaia.validator.health")


async def health_snapshot(session: AsyncSession) -> dict[str, dict[str, int]]:
    jobs: Counter[str] = Counter()
    for (_, status), count in (await job_counts(session)).items():
        jobs[status.value] += count
    rows = await session.execute(
        select(WeatherForecastRun.status, func.count()).group_by(WeatherForecastRun.status)
    )
    return {"jobs": dict(jobs), "runs": {status.value: count for status, count in rows}}


def format_snapshot(snapshot: dict[str, dict[str, int]]) -> str:
    parts = []
    for group, counts in snapshot.items():
        listed = " ".join(f"{name}={count}" for name, count in sorted(counts.items()))
        parts.append(f"{group}[{listed or 'none'}]")
    return " ".join(parts)


async def log_health(
    session_factory: async_sessionmaker[AsyncSession], stop: asyncio.Event, every_s: float = 60.0,
    *, paused_by_setting: bool = False,
) -> None:
    while not stop.is_set():
        async with session_factory() as session:
            state = await pause_state(session, forced=paused_by_setting)
            log.info("health %s %s", state.describe(),
                     format_snapshot(await health_snapshot(session)))
        try:
            await asyncio.wait_for(stop.wait(), timeout=every_s)
        except TimeoutError:
            continue

"""``admin pause`` / ``resume`` on a real database, ``admin runs`` and the health line showing it."""

from __future__ import annotations

import asyncio
import logging
import re

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.config import Settings
from gaia.jobs.queue import JobQueue
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import RunPayload
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.validator import admin
from gaia.validator.health import log_health


async def _admin(database_url: str, *argv: str) -> str:
    settings = Settings(database_url=database_url)
    return await admin.run_command(settings, admin.build_parser(settings).parse_args(argv))


async def test_pause_and_resume_are_shown_by_runs(
    session_factory: async_sessionmaker, database_url: str,
) -> None:
    assert (await _admin(database_url, "runs")).startswith("validator: running\n")
    paused = await _admin(database_url, "pause", "--reason", "rolling back to 1.4")
    assert "paused since" in paused and "(rolling back to 1.4)" in paused
    again = await _admin(database_url, "pause", "--reason", "other")
    assert again.startswith("already paused since") and "rolling back to 1.4" in again
    first_line = (await _admin(database_url, "runs")).splitlines()[0]
    assert "(rolling back to 1.4); drained: no run or miner job" in first_line
    async with session_factory.begin() as session:  # a started chain still before its commit
        await JobQueue(all_policies()).enqueue(session, WeatherJob.ORCHESTRATE,
                                               RunPayload(run_id=7), singleton_key="o:7")
    assert "1 run or miner jobs before their commit still live (draining)" in (
        await _admin(database_url, "runs"))
    assert (await _admin(database_url, "resume")).startswith("resumed (paused since")
    assert (await _admin(database_url, "runs")).startswith("validator: running\n")
    assert await _admin(database_url, "resume") == "not paused; nothing changed"


async def test_the_health_line_says_paused_since_when_and_why(
    session_factory: async_sessionmaker, database_url: str, caplog: pytest.LogCaptureFixture,
) -> None:
    await _admin(database_url, "pause", "--reason", "disk full")
    stop = asyncio.Event()
    with caplog.at_level(logging.INFO, logger="gaia.validator.health"):
        task = asyncio.create_task(log_health(session_factory, stop, every_s=3600,
                                              paused_by_setting=True))
        for _ in range(500):
            if "health " in caplog.text:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(task, 5)
    [line] = [r.getMessage() for r in caplog.records if r.name == "gaia.validator.health"]
    assert re.match(r"health paused since \d{4}-\d\d-\d\d \d\d:\d\d UTC \(disk full\); "
                    r"paused by validator.paused on this process jobs\[", line), line

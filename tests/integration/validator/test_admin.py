"""Operator commands on a real database."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from gaia.database.validator_schema import WeatherMinerResponse, WeatherMinerScore
from gaia.jobs.queue import JobQueue
from gaia.jobs.schema import JobStatus, ValidatorJob
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus
from gaia.validator import admin
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.database import truncate_all
from tests.fixtures.miner import REPO_ROOT

INIT = datetime(2025, 1, 1, 6, tzinfo=UTC)
QUEUE = JobQueue(all_policies())


async def _run_with_responses(factory: async_sessionmaker, statuses: dict[str, MinerResponseStatus]) -> int:
    async with factory.begin() as session:
        run_id, _ = await db.create_run(session, INIT, RunMode.HINDCAST, INIT + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await db.admin_override_run(session, run_id, {RunStatus.CREATED}, RunStatus.COMPLETED)
        for uid, (hotkey, status) in enumerate(statuses.items()):
            response_id = await db.insert_response(session, run_id, hotkey, uid)
            await session.execute(WeatherMinerResponse.__table__.update()
                                  .where(WeatherMinerResponse.id == response_id)
                                  .values(status=status, failure_reason="miner offline",
                                          failed_step="query_miner"))
            await db.store_scores(session, run_id, hotkey, [
                ComponentRecord(ScoreKind.DAY1, "all", 0, 0, Metric.SCORE, 0.5)])
    return run_id


async def test_hindcast_is_queued_once(session_factory: async_sessionmaker) -> None:
    async with session_factory.begin() as session:
        now = INIT + timedelta(days=30)
        first = await admin.create_hindcast(session, QUEUE, INIT, timedelta(hours=1), now)
        second = await admin.create_hindcast(session, QUEUE, INIT, timedelta(hours=1), now)
    assert "queued" in first and "already" in second
    async with session_factory() as session:
        jobs = list(await session.scalars(select(ValidatorJob)))
    assert [(j.job_type, j.payload["mode"], j.payload["init_time"]) for j in jobs] == [
        (WeatherJob.RUN_CREATE, "hindcast", "2025-01-01T06:00:00Z")
    ]


async def test_runs_and_responses_show_states_and_reasons(session_factory: async_sessionmaker) -> None:
    run_id = await _run_with_responses(session_factory, {"5Alpha": MinerResponseStatus.FAILED})
    async with session_factory() as session:
        runs = await admin.show_runs(session, 5)
        responses = await admin.show_responses(session, run_id)
    assert "2025-01-01 06Z" in runs and "hindcast" in runs and "failed=1" in runs
    assert "5Alpha" in responses and "miner offline" in responses and "query_miner" in responses


async def test_requeue_starts_a_failed_miner_over(session_factory: async_sessionmaker) -> None:
    run_id = await _run_with_responses(session_factory, {
        "5Failed": MinerResponseStatus.FAILED, "5Done": MinerResponseStatus.ERA5_SCORED})
    async with session_factory.begin() as session:
        await admin.requeue_miner(session, QUEUE, run_id, "5Failed")
    async with session_factory() as session:
        rows = {r.miner_hotkey: r for r in await session.scalars(select(WeatherMinerResponse))}
        scores = list(await session.scalars(select(WeatherMinerScore.miner_hotkey)))
        job = await session.scalar(select(ValidatorJob))
        run = await db.get_run(session, run_id)
    assert rows["5Failed"].status is MinerResponseStatus.CREATED
    assert rows["5Failed"].failure_reason is None
    assert scores == ["5Done"]
    assert (job.job_type, job.payload["miner_hotkey"]) == (WeatherJob.QUERY_MINER, "5Failed")
    assert run.status is RunStatus.SCORING_DAY1  # one miner is before day-1 again
    with pytest.raises(admin.AdminError, match="era5_scored .* nothing to requeue"):
        async with session_factory.begin() as session:
            await admin.requeue_miner(session, QUEUE, run_id, "5Done")


@pytest.mark.parametrize(("status", "job_type"), [
    (MinerResponseStatus.CREATED, WeatherJob.QUERY_MINER),
    (MinerResponseStatus.FETCH_INITIATED, WeatherJob.POLL_MINER),
    (MinerResponseStatus.INFERENCE_RUNNING, WeatherJob.POLL_MINER),
    (MinerResponseStatus.FORECAST_READY, WeatherJob.DAY1_SCORE),
    (MinerResponseStatus.DAY1_SCORING, WeatherJob.DAY1_SCORE),
    (MinerResponseStatus.DAY1_SCORED, WeatherJob.ERA5_SCORE),
    (MinerResponseStatus.ERA5_SCORING, WeatherJob.ERA5_SCORE),
])
async def test_requeue_of_a_stuck_miner_enqueues_the_job_its_state_needs(
    session_factory: async_sessionmaker, status: MinerResponseStatus, job_type: WeatherJob,
) -> None:
    run_id = await _run_with_responses(session_factory, {"5Stuck": status})
    async with session_factory.begin() as session:
        message = await admin.requeue_miner(session, QUEUE, run_id, "5Stuck")
    assert job_type in message and status.value in message
    async with session_factory() as session:
        response = await session.scalar(select(WeatherMinerResponse))
        jobs = list(await session.scalars(select(ValidatorJob)))
    assert response.status is status  # the row is kept as it is, scores too
    assert [(j.job_type, j.status, j.singleton_key, j.payload["response_id"]) for j in jobs] == [
        (job_type, JobStatus.QUEUED, f"{job_type}:run={run_id}:hotkey=5Stuck", response.id)]
    with pytest.raises(admin.AdminError, match=f"live {job_type} job already holds"):
        async with session_factory.begin() as session:
            await admin.requeue_miner(session, QUEUE, run_id, "5Stuck")
    async with session_factory() as session:
        assert len(list(await session.scalars(select(ValidatorJob)))) == 1  # nothing changed


def test_the_command_line_requeues_a_stuck_miner_once(database_url: str) -> None:
    asyncio.run(_stuck_response(database_url))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    command = [sys.executable, "-m", "gaia.validator.admin", "--database-url", database_url,
               "requeue", "1", "5Stuck"]
    first = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                           timeout=60)
    again = subprocess.run(command, capture_output=True, text=True, cwd=REPO_ROOT, env=env,
                           timeout=60)
    assert first.returncode == 0 and WeatherJob.POLL_MINER in first.stdout, first.stderr
    assert again.returncode == 2 and "already holds" in again.stderr


async def _stuck_response(database_url: str) -> None:
    engine = create_async_engine(database_url)
    try:
        factory = async_sessionmaker(engine, expire_on_commit=False)
        async with factory.begin() as session:
            await truncate_all(session)
        await _run_with_responses(factory, {"5Stuck": MinerResponseStatus.INFERENCE_RUNNING})
    finally:
        await engine.dispose()


async def test_reseed_only_before_fan_out_or_after_an_error(
    session_factory: async_sessionmaker,
) -> None:
    run_id = await _run_with_responses(session_factory, {})
    with pytest.raises(admin.AdminError, match="completed"):
        async with session_factory.begin() as session:
            await admin.reseed_run(session, QUEUE, run_id)
    async with session_factory.begin() as session:
        await db.admin_override_run(session, run_id, {RunStatus.COMPLETED}, RunStatus.ERROR,
                                    error="GFS")
        assert "seeded again" in await admin.reseed_run(session, QUEUE, run_id)
    async with session_factory() as session:
        assert (await db.get_run(session, run_id)).status is RunStatus.CREATED
        assert (await session.scalar(select(ValidatorJob))).job_type == WeatherJob.SEED


def test_the_command_line_prints_the_queue(database_url: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    result = subprocess.run([sys.executable, "-m", "gaia.validator.admin", "--database-url",
                             database_url, "queue"], capture_output=True, text=True,
                            cwd=REPO_ROOT, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "job type" in result.stdout
    bad = subprocess.run([sys.executable, "-m", "gaia.validator.admin", "--database-url",
                          database_url, "responses", "999"], capture_output=True, text=True,
                         cwd=REPO_ROOT, env=env, timeout=60)
    assert bad.returncode == 1 and bad.stderr.strip() == "gaia.validator.admin: no run 999"

"""The miner's queries on both backends: SQLite (the default) and a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia.database.miner_schema import MinerJob
from gaia.miner.database import UNFINISHED, MinerDatabase, database_url_for
from gaia.miner.runtime import purge_expired
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus, job_id_for
from tests.fixtures.database import create_database, drop_database

HOTKEY = "5FREZBzaQ5VSCgD1MN28qqwKdiJ8NPMajtJ3JEnvauicHS3k"
T0 = datetime(2025, 1, 1, 6, tzinfo=UTC)
NOW = datetime(2025, 1, 2, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield database_url_for(None, tmp_path)
        return
    name = f"gaia_miner_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[MinerDatabase]:
    database = MinerDatabase(database_url)
    await database.create_tables()
    await database.create_tables()  # idempotent: every start runs it
    try:
        yield database
    finally:
        await database.close()


def new_job(init_time: datetime = T0, requested_by: str = "validator-a") -> MinerJob:
    return MinerJob(
        job_id=job_id_for(HOTKEY, init_time),
        miner_hotkey=HOTKEY,
        gfs_init_time=init_time,
        model="persistence",
        status=MinerJobStatus.FETCHING_INPUTS,
        leads_done=0,
        leads_total=40,
        attempts=0,
        requested_by=requested_by,
        created_at=NOW,
        updated_at=NOW,
    )


async def test_a_job_is_created_once(db: MinerDatabase) -> None:
    first, created = await db.get_or_create_job(new_job())
    second, created_again = await db.get_or_create_job(new_job(requested_by="validator-b"))
    assert (created, created_again) == (True, False)
    assert second == first
    assert second.requested_by == "validator-a"
    assert second.gfs_init_time == T0 and second.gfs_init_time.tzinfo is not None


async def test_status_changes_follow_the_state_machine(db: MinerDatabase) -> None:
    job, _ = await db.get_or_create_job(new_job())
    assert await db.begin_attempt(job.job_id, NOW)
    assert not await db.mark_ready(job.job_id, "a" * 64, NOW)  # not inferring yet
    assert await db.mark_inference_running(job.job_id, 40, NOW)
    assert await db.record_progress(job.job_id, 7, NOW)
    assert await db.mark_ready(job.job_id, "a" * 64, NOW + timedelta(minutes=5))
    ready = await db.get_job(job.job_id)
    assert ready is not None
    assert (ready.status, ready.leads_done, ready.attempts) == (MinerJobStatus.FORECAST_READY, 7, 1)
    assert ready.finished_at == NOW + timedelta(minutes=5)
    assert not await db.mark_failed(job.job_id, "late failure", NOW)  # finished stays finished
    assert not await db.restart_failed(job.job_id, NOW)


async def test_failed_jobs_restart_and_unfinished_ones_are_listed(db: MinerDatabase) -> None:
    job, _ = await db.get_or_create_job(new_job())
    other, _ = await db.get_or_create_job(new_job(T0 + timedelta(hours=6)))
    assert await db.mark_failed(job.job_id, "GfsUnavailable: not published", NOW)
    assert [j.job_id for j in await db.jobs_with_status(UNFINISHED)] == [other.job_id]
    assert await db.restart_failed(job.job_id, NOW)
    restarted = await db.get_job(job.job_id)
    assert restarted is not None
    assert (restarted.status, restarted.error) == (MinerJobStatus.FETCHING_INPUTS, None)
    assert {j.job_id for j in await db.jobs_with_status(UNFINISHED)} == {job.job_id, other.job_id}


async def test_nonces_refuse_replays_until_forgotten(db: MinerDatabase) -> None:
    expires = NOW + timedelta(seconds=70)
    assert await db.remember_nonce("validator-a", 123, expires)
    assert not await db.remember_nonce("validator-a", 123, expires)
    assert await db.remember_nonce("validator-b", 123, expires)
    assert await db.forget_nonces_before(expires + timedelta(seconds=1)) == 2
    assert await db.remember_nonce("validator-a", 123, expires)


async def test_purge_deletes_expired_forecasts_files_and_rows(
    db: MinerDatabase, tmp_path: Path
) -> None:
    old, _ = await db.get_or_create_job(new_job())
    fresh, _ = await db.get_or_create_job(new_job(T0 + timedelta(days=1)))
    for job, finished_at in ((old, NOW), (fresh, NOW + timedelta(days=6))):
        await db.begin_attempt(job.job_id, NOW)
        await db.mark_inference_running(job.job_id, 40, NOW)
        await db.mark_ready(job.job_id, "b" * 64, finished_at)
        (tmp_path / job.job_id / "2t" / "c").mkdir(parents=True)
        (tmp_path / job.job_id / "manifest.json").write_text("{}")

    purged = await purge_expired(db, tmp_path, cutoff=NOW + timedelta(days=1))
    assert purged == 1
    assert await db.get_job(old.job_id) is None and not (tmp_path / old.job_id).exists()
    assert await db.get_job(fresh.job_id) is not None and (tmp_path / fresh.job_id).exists()

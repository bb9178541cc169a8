"""The miner's queries on both backends: SQLite (the default) and a real PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia.database.miner_schema import MinerJob
from gaia.miner.database import UNFINISHED, MinerDatabase, database_url_for
from gaia.miner.errors import NotFound
from gaia.miner.forecasts import ForecastFiles
from gaia.miner.runtime import purge_early_leads, purge_expired
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus, job_id_for
from gaia.tasks.defined_tasks.weather.retention import (
    DAY1_WINDOW,
    EARLY_LEADS_DELETED,
    RETENTION_PROMISE,
    RetentionRule,
    early_lead_keys,
)
from tests.fixtures.database import create_database, drop_database
from tests.fixtures.forecast_store import INIT_TIME, new_keypair, write_small_forecast

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
    assert not await db.restart_failed(job.job_id, 1, NOW)


async def test_failed_jobs_restart_and_unfinished_ones_are_listed(db: MinerDatabase) -> None:
    job, _ = await db.get_or_create_job(new_job())
    other, _ = await db.get_or_create_job(new_job(T0 + timedelta(hours=6)))
    assert await db.mark_failed(job.job_id, "GfsUnavailable: not published", NOW)
    assert [j.job_id for j in await db.jobs_with_status(UNFINISHED)] == [other.job_id]
    assert not await db.restart_failed(job.job_id, 1, NOW)  # it has run 0 times, not 1
    assert await db.restart_failed(job.job_id, 0, NOW)
    assert not await db.restart_failed(job.job_id, 0, NOW)  # already restarted
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


async def _finish(
    db: MinerDatabase, job: MinerJob, finished_at: datetime, *, ready: bool = True
) -> None:
    await db.get_or_create_job(job)
    await db.begin_attempt(job.job_id, NOW)
    if ready:
        await db.mark_inference_running(job.job_id, 40, NOW)
        assert await db.mark_ready(job.job_id, "b" * 64, finished_at)
    else:
        assert await db.mark_failed(job.job_id, "GfsUnavailable", finished_at)


def _named(job: MinerJob, job_id: str) -> MinerJob:
    job.job_id = job_id
    return job


async def test_purge_expires_forecasts_by_init_time_not_finish_time(
    db: MinerDatabase, tmp_path: Path
) -> None:
    late = _named(new_job(T0), "late")  # finished 10 days after its init: still goes at T0 + 16 d
    failed = _named(new_job(T0), "failed")
    running = _named(new_job(T0), "running")
    fresh = _named(new_job(T0 + timedelta(days=1)), "fresh")
    await _finish(db, late, T0 + timedelta(days=10))
    await _finish(db, failed, T0 + timedelta(hours=2), ready=False)
    await _finish(db, fresh, T0 + timedelta(days=1, hours=7))
    await db.get_or_create_job(running)
    for job_id in ("late", "fresh", "running"):
        (tmp_path / job_id / "2t" / "c").mkdir(parents=True)
    (tmp_path / "failed.partial").mkdir()  # what a crashed write leaves

    rule = RetentionRule()
    assert await purge_expired(db, tmp_path, rule, T0 + RETENTION_PROMISE - timedelta(minutes=1)) == 0
    assert await purge_expired(db, tmp_path, rule, T0 + RETENTION_PROMISE + timedelta(minutes=1)) == 2
    for gone in ("late", "failed"):
        assert await db.get_job(gone) is None
    assert not (tmp_path / "late").exists() and not (tmp_path / "failed.partial").exists()
    for kept in ("fresh", "running"):
        assert await db.get_job(kept) is not None and (tmp_path / kept).exists()


async def test_early_leads_go_after_the_day1_window_on_a_real_store(
    db: MinerDatabase, tmp_path: Path
) -> None:
    init = datetime.fromisoformat(str(INIT_TIME)[:19]).replace(tzinfo=UTC)
    job = _named(new_job(init), "job-1")
    written = write_small_forecast(tmp_path / "job-1", new_keypair(), leads=(6, 12, 18, 24, 48))
    await _finish(db, job, init + timedelta(hours=7))
    manifest = written.signed.manifest
    early = set(early_lead_keys(manifest))
    everything = set(manifest.files) | {"manifest.json"}
    rule = RetentionRule()

    assert await purge_early_leads(db, tmp_path, rule, init + DAY1_WINDOW - timedelta(minutes=1)) == 0
    assert _files(tmp_path / "job-1") == everything
    after = init + DAY1_WINDOW + timedelta(minutes=1)
    assert await purge_early_leads(db, tmp_path, rule, after) == len(early) > 0
    # what remains: every file the manifest keeps, and the marker that spares later purges
    # from reading the manifest again
    assert _files(tmp_path / "job-1") == (everything - early) | {EARLY_LEADS_DELETED}
    assert await purge_early_leads(db, tmp_path, rule, after) == 0  # done once

    files = ForecastFiles(db=db, store_root=tmp_path)
    kept = chunk_key("2t", manifest.lead_hours.index(24), None)
    assert (await files.file("job-1", kept)).is_file()
    with pytest.raises(NotFound, match="no longer keeps"):
        await files.file("job-1", chunk_key("2t", manifest.lead_hours.index(6), None))


def _files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}

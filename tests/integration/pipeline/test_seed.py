"""``weather.seed`` against the local archive's GFS on loopback: the run goes to
``gfs_ready`` with its fan-out queued, and the validator downloads only the GFS fields its
day-1 scoring reads (the miners fetch their own inputs), each once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.config import DataSettings, Settings
from gaia.jobs.schema import ValidatorJob
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.pipeline import orchestrator
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import RunPayload
from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import (
    ScoringEnvironment,
    ScoringService,
)
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS
from gaia.tasks.defined_tasks.weather.states import RunMode, RunStatus
from gaia.tasks.defined_tasks.weather.variables import DAY1_LEAD_HOURS
from gaia.validator.database import validator_database_manager as db
from tests.fixtures.archive import ArchiveUrls
from tests.fixtures.miner import make_wallet
from tests.fixtures.pipeline import fixed_clock, job_context, pipeline_context


def _context(session_factory: async_sessionmaker, root: Path, urls: ArchiveUrls,
             archive: ArchiveInfo):  # type: ignore[no-untyped-def]
    clock = fixed_clock(archive.init_times[0] + timedelta(hours=4))
    base = pipeline_context(session_factory, root, gfs_base_url=urls.gfs_base, clock=clock)
    env = ScoringEnvironment.from_settings(Settings(data=DataSettings(
        gfs_base_url=urls.gfs_base, era5_url=urls.era5, climatology_url=urls.climatology,
        cache_dir=root / "scoring-cache", reference_cache_dir=root / "references")))
    signed = SignedClient(make_wallet(root / "scorer-wallet", "validator"), timeout=5.0)
    return replace(base, gfs=GfsSource(urls.gfs_base, root / "gfs-cache"),
                   forecasts=ScoringService(env, signed, processes=0, clock=clock))


def _cached_fields(cache: Path) -> set[tuple[str, str]]:
    return {(path.parent.name, path.stem) for path in cache.rglob("*.grib2")}


async def test_the_seed_downloads_the_day1_fields_once_and_queues_the_fan_out(
    session_factory: async_sessionmaker, tmp_path: Path, archive: ArchiveInfo,
    archive_urls: ArchiveUrls, clean_archive_server: ArchiveServer,
) -> None:
    ctx = _context(session_factory, tmp_path, archive_urls, archive)
    init = archive.init_times[0]
    async with session_factory.begin() as session:
        run_id, _ = await db.create_run(session, init, RunMode.HINDCAST, init + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
    await orchestrator.seed_run(ctx, RunPayload(run_id=run_id), job_context(
        session_factory, 1, WeatherJob.SEED))
    async with session_factory() as session:
        assert (await db.get_run(session, run_id)).status is RunStatus.GFS_READY
        jobs = list(await session.scalars(select(ValidatorJob.job_type)))
    assert jobs == [WeatherJob.ORCHESTRATE]
    levels = {str(level) for _, level in DAY1_FIELDS if level is not None}
    cached = _cached_fields(tmp_path / "gfs-cache")
    assert {lead for lead, _ in cached} == {f"f{lead:03d}" for lead in DAY1_LEAD_HOURS}
    for _, field in cached:  # the day-1 variables, at most at the day-1 levels
        name, level = field.rsplit("_", 1)
        assert name in {v for v, _ in DAY1_FIELDS} and (level == "sfc" or level in levels)
    assert len(cached) <= len(DAY1_LEAD_HOURS) * 8  # 69 fields per lead were downloaded before

    ranged = [r for r in clean_archive_server.requests if r.range is not None]
    await orchestrator.seed_run(ctx, RunPayload(run_id=run_id), job_context(
        session_factory, 1, WeatherJob.SEED))  # a rerun: the run is ready, nothing is fetched
    assert [r for r in clean_archive_server.requests if r.range is not None] == ranged

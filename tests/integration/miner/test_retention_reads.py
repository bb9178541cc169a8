"""Retention on a real miner process, read through the validator's real verified reader:
after the early-lead purge an ERA5 lead still verifies and loads, a deleted early lead is the
miner's 404; after the promise the forecast is gone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import numpy as np
import pytest
import xarray as xr

from gaia.miner.database import JobRecord, MinerDatabase, database_url_for
from gaia.miner.runtime import purge_early_leads, purge_expired
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus, job_status_path
from gaia.tasks.defined_tasks.weather.retention import (
    MIN_KEEP_AFTER_FINISH,
    RetentionRule,
    early_lead_keys,
)
from tests.fixtures.miner import MinerArchive, MinerProcess, finished, initiate, wait_for_job

RULE = RetentionRule()


@pytest.fixture
async def miner_db(miner: MinerProcess) -> AsyncIterator[MinerDatabase]:
    """The miner's own database, opened beside the running process (SQLite in WAL mode)."""
    db = MinerDatabase(database_url_for(None, miner.data_dir))
    try:
        yield db
    finally:
        await db.close()


async def _ready_job(
    client: SignedClient, miner: MinerProcess, archive: MinerArchive, db: MinerDatabase
) -> JobRecord:
    response = await initiate(client, miner, archive.init_time)
    assert response.status_code == 200, response.text
    status = await wait_for_job(client, miner, response.json()["job_id"], finished)
    assert status.status is MinerJobStatus.FORECAST_READY, status.error
    job = await db.get_job(status.job_id)
    assert job is not None and job.finished_at is not None
    return job


async def test_an_era5_lead_still_verifies_after_the_early_leads_are_deleted(
    miner: MinerProcess,
    miner_archive: MinerArchive,
    miner_db: MinerDatabase,
    validator_client: SignedClient,
) -> None:
    job = await _ready_job(validator_client, miner, miner_archive, miner_db)
    assert job.finished_at is not None and job.manifest_hash is not None
    store_root = miner.data_dir / "forecasts"
    signed = await fetch_verified_manifest(
        validator_client, miner.url, job.job_id, miner.hotkey, job.manifest_hash
    )
    # the miner's own loop keeps it (finished just now); the purge a day later deletes them
    a_day_later = job.finished_at + MIN_KEEP_AFTER_FINISH + timedelta(minutes=1)
    deleted = await purge_early_leads(miner_db, store_root, RULE, a_day_later)
    assert deleted == len(early_lead_keys(signed.manifest)) > 0

    forecast = await open_verified_forecast(
        validator_client, miner.url, job.job_id, signed.manifest, job.manifest_hash
    )
    on_disk = xr.open_zarr(store_root / job.job_id, consolidated=True, zarr_format=3)
    for lead in (24, 240):
        read = await load_lead(forecast, lead)
        assert set(read) == set(forecast.fields)
        assert {name for name, _ in read} == set(signed.manifest.variables)
        expected = LeadFields.from_dataset(on_disk.sel(lead_hours=lead), read)
        for key in read:
            assert np.isfinite(read[key]).all()
            np.testing.assert_array_equal(read[key], expected[key])
    with pytest.raises(ForecastInvalid, match="missing \\(HTTP 404\\)"):
        await load_lead(forecast, 6)


async def test_the_whole_forecast_goes_after_the_promise(
    miner: MinerProcess,
    miner_archive: MinerArchive,
    miner_db: MinerDatabase,
    validator_client: SignedClient,
) -> None:
    job = await _ready_job(validator_client, miner, miner_archive, miner_db)
    assert job.finished_at is not None
    store_root = miner.data_dir / "forecasts"
    assert RULE.expires_at(job.gfs_init_time, job.finished_at) == (
        job.finished_at + MIN_KEEP_AFTER_FINISH  # a hindcast: its init is long past
    )
    just_before = job.finished_at + MIN_KEEP_AFTER_FINISH - timedelta(minutes=1)
    assert await purge_expired(miner_db, store_root, RULE, just_before) == 0
    after = job.finished_at + MIN_KEEP_AFTER_FINISH + timedelta(minutes=1)
    assert await purge_expired(miner_db, store_root, RULE, after) == 1

    assert not (store_root / job.job_id).exists() and await miner_db.get_job(job.job_id) is None
    status = await validator_client.get(miner.url + job_status_path(job.job_id), miner.hotkey)
    assert status.status_code == 404
    with pytest.raises(ForecastInvalid, match="missing \\(HTTP 404\\)"):
        await fetch_verified_manifest(validator_client, miner.url, job.job_id, miner.hotkey)

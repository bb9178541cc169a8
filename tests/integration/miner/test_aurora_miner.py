"""A real miner process running a tiny random-weight Aurora, loaded from a local checkpoint
file, through the real job path on the synthetic archive: GFS inputs (and, without a statics
file, GFS's static fields) over loopback, the rollout lead by lead into the store, the signed
manifest. The store is then read as a validator reads it: every lead and field finite and on
the input grid, and the validator's day-1 checks fail it, if at all, only for ranges (random
weights) or skill, never for grid or coverage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pytest

from tests.fixtures.aurora import require_aurora, write_statics_netcdf

require_aurora()

from gaia.config import DataSettings, Settings, WalletSettings  # noqa: E402
from gaia.net.signed_http import SignedClient  # noqa: E402
from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.forecast_reader import (  # noqa: E402
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import file_sha256  # noqa: E402
from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef  # noqa: E402
from gaia.tasks.defined_tasks.weather.pipeline.scoring_tasks import (  # noqa: E402
    ScoringEnvironment,
    day1_task,
)
from gaia.tasks.defined_tasks.weather.protocol import (  # noqa: E402
    InitiateFetchResponse,
    MinerJobStatus,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS  # noqa: E402
from tests.fixtures.archive import ARCHIVE_GRID_DEG  # noqa: E402
from tests.fixtures.miner import (  # noqa: E402
    MinerArchive,
    MinerIdentities,
    MinerProcess,
    finished,
    initiate,
    new_miner,
    wait_for_job,
)

pytestmark = pytest.mark.slow
# what random weights may fail day-1 for: implausible values, no skill; never the grid,
# coverage or missing fields
SKILL_REASONS = ("outside the plausible range", "below the minimum")


def aurora_miner(identities: MinerIdentities, archive: MinerArchive, data_dir: Path,
                 checkpoint: Path, *extra: str) -> MinerProcess:
    return new_miner(identities, archive, data_dir, model="aurora", extra_args=(
        "--aurora.variant", "tiny", "--aurora.checkpoint", str(checkpoint), "--device", "cpu",
        "--aurora.grid-deg", str(ARCHIVE_GRID_DEG), *extra))


async def forecast_of(miner: MinerProcess, archive: MinerArchive, client: SignedClient
                      ) -> ForecastRef:
    accepted = InitiateFetchResponse.model_validate_json(
        (await initiate(client, miner, archive.init_time)).content)
    status = await wait_for_job(client, miner, accepted.job_id, finished, timeout_s=300)
    assert status.status is MinerJobStatus.FORECAST_READY, (status.error, miner.log_tail())
    return ForecastRef(archive.init_time, miner.url, miner.hotkey, accepted.job_id,
                       status.manifest_hash)


async def check_leads(forecast: ForecastRef, client: SignedClient, grid: Grid,
                      leads: tuple[int, ...] = FORECAST_LEAD_HOURS) -> None:
    signed = await fetch_verified_manifest(client, forecast.base_url, forecast.job_id,
                                           forecast.hotkey, forecast.manifest_hash)
    opened = await open_verified_forecast(client, forecast.base_url, forecast.job_id,
                                          signed.manifest, signed.manifest_hash)
    assert opened.grid == grid and opened.lead_hours == FORECAST_LEAD_HOURS
    assert len(opened.fields) == 69
    for lead in leads:
        fields = await load_lead(opened, lead)
        assert set(fields.arrays) == set(opened.fields)
        for key, values in fields.arrays.items():
            assert values.shape == grid.shape and np.all(np.isfinite(values)), (lead, key)


def scoring_environment(tmp_path: Path, archive: MinerArchive, wallet_root: Path,
                        server_url: str) -> ScoringEnvironment:
    info = archive.info
    return ScoringEnvironment.from_settings(Settings(
        wallet=WalletSettings(name="validator", path=wallet_root),
        data=DataSettings(
            cache_dir=tmp_path / "cache", reference_cache_dir=tmp_path / "references",
            gfs_base_url=archive.gfs_base_url, gfs_fallback_url=None,
            era5_url=info.era5_url(server_url), climatology_url=info.climatology_url(server_url),
            http_timeout_s=30.0,
        ),
    ))


def assert_only_skill_reasons(reasons: tuple[str, ...]) -> None:
    assert all(any(words in reason for words in SKILL_REASONS) for reason in reasons), reasons


async def test_aurora_with_gfs_statics_through_the_miner(
    miner_identities: MinerIdentities, miner_archive: MinerArchive, archive_server,
    tiny_checkpoint: Path, tmp_path: Path, miner_processes: list[MinerProcess],
) -> None:
    miner = aurora_miner(miner_identities, miner_archive, tmp_path / "miner", tiny_checkpoint)
    miner_processes.append(miner.start(timeout_s=120))
    assert f"checkpoint_sha256 {file_sha256(tiny_checkpoint)}" in miner.log_tail()
    async with httpx.AsyncClient() as plain:
        health = (await plain.get(miner.url + "/healthz")).json()
    assert health["model"] == "aurora"
    assert health["model_identity"]["checkpoint_sha256"] == file_sha256(tiny_checkpoint)
    async with SignedClient(miner_identities.validator, timeout=30.0) as client:
        forecast = await forecast_of(miner, miner_archive, client)
        await check_leads(forecast, client, miner_archive.info.grid)
    log = miner.log_tail(10**7)
    assert "statics GFS f000" in log
    env = scoring_environment(tmp_path, miner_archive, Path(miner_identities.validator.path),
                              archive_server.url)
    # the scoring process's entry point, in a thread as in its process (it runs its own loop)
    outcome = await asyncio.to_thread(day1_task, env, datetime.now(UTC), forecast)
    assert_only_skill_reasons(outcome.reasons)
    assert not outcome.verdict.clone


async def test_aurora_with_a_statics_file_through_the_miner(
    miner_identities: MinerIdentities, miner_archive: MinerArchive, tiny_checkpoint: Path,
    tmp_path: Path, miner_processes: list[MinerProcess],
) -> None:
    statics = write_statics_netcdf(tmp_path / "statics.nc", miner_archive.info.grid)
    miner = aurora_miner(miner_identities, miner_archive, tmp_path / "miner", tiny_checkpoint,
                         "--aurora.statics", str(statics))
    miner_processes.append(miner.start(timeout_s=120))
    async with SignedClient(miner_identities.validator, timeout=30.0) as client:
        forecast = await forecast_of(miner, miner_archive, client)
        await check_leads(forecast, client, miner_archive.info.grid, leads=(6, 24, 240))
    assert "statics file statics.nc" in miner.log_tail(10**7)

"""A real miner process, the real GFS source on a local miner_archive, real signed requests:
initiate-fetch starts inference at once, the forecast is committed by a signed manifest
whose every file checks out, and a second validator joins the same job."""

from __future__ import annotations

import asyncio
import hashlib
import json

import httpx

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.forecast_manifest import verify_signed_manifest
from gaia.tasks.defined_tasks.weather.protocol import (
    InitiateFetchResponse,
    MinerJobStatus,
    forecast_file_path,
    job_id_for,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS
from tests.fixtures.miner import MinerProcess, finished, initiate, job_row, wait_for_job


async def fetch_all(
    client: SignedClient, miner: MinerProcess, job_id: str, keys: list[str]
) -> dict[str, bytes]:
    slots = asyncio.Semaphore(8)

    async def one(key: str) -> tuple[str, bytes]:
        async with slots:
            response = await client.get(miner.url + forecast_file_path(job_id, key), miner.hotkey)
        assert response.status_code == 200, (key, response.text)
        return key, response.content

    return dict(await asyncio.gather(*(one(key) for key in keys)))


def _lead_index(key: str) -> int:
    return int(key.split("/c/")[1].split("/")[0])


async def test_forecast_is_committed_verified_and_shared(
    miner: MinerProcess, miner_archive, miner_identities, validator_client: SignedClient
) -> None:
    response = await initiate(validator_client, miner, miner_archive.init_time)
    assert response.status_code == 200, response.text
    accepted = InitiateFetchResponse.model_validate_json(response.content)
    assert accepted.job_id == job_id_for(miner.hotkey, miner_archive.init_time)
    assert accepted.status is MinerJobStatus.FETCHING_INPUTS

    status = await wait_for_job(validator_client, miner, accepted.job_id, finished)
    assert status.status is MinerJobStatus.FORECAST_READY, status.error
    assert status.progress.leads_done == status.progress.leads_total == len(FORECAST_LEAD_HOURS)
    assert status.manifest_url is not None and status.manifest_hash is not None

    document = await validator_client.get(miner.url + status.manifest_url, miner.hotkey)
    assert document.status_code == 200
    signed = verify_signed_manifest(document.content, miner.hotkey)
    assert signed.manifest_hash == status.manifest_hash
    assert signed.manifest.job_id == accepted.job_id
    assert signed.manifest.lead_hours == FORECAST_LEAD_HOURS

    store = miner.data_dir / "forecasts" / accepted.job_id
    on_disk = {p.relative_to(store).as_posix() for p in store.rglob("*") if p.is_file()}
    assert on_disk == set(signed.manifest.files) | {"manifest.json"}
    for key, entry in signed.manifest.files.items():
        content = (store / key).read_bytes()
        assert (len(content), hashlib.sha256(content).hexdigest()) == (entry.size, entry.sha256), (
            key
        )
    # what is served is what was committed: metadata and the first and last lead of every field
    served = [k for k in signed.manifest.files if "/c/" not in k or _lead_index(k) in (0, 39)]
    files = await fetch_all(validator_client, miner, accepted.job_id, served)
    for key, content in files.items():
        assert hashlib.sha256(content).hexdigest() == signed.manifest.files[key].sha256, key

    async with SignedClient(miner_identities.second_validator, timeout=10.0) as second:
        again = await initiate(second, miner, miner_archive.init_time)
    assert again.status_code == 200
    assert InitiateFetchResponse.model_validate_json(again.content) == InitiateFetchResponse(
        job_id=accepted.job_id, status=MinerJobStatus.FORECAST_READY
    )
    row = job_row(miner, accepted.job_id)
    assert row["attempts"] == 1  # one inference served both validators
    assert miner.log_tail(10**7).count(f"job {accepted.job_id}: fetching GFS inputs") == 1


async def test_files_support_range_and_head(
    miner: MinerProcess, miner_archive, validator_client: SignedClient
) -> None:
    job_id = (
        InitiateFetchResponse.model_validate_json(
            (await initiate(validator_client, miner, miner_archive.init_time)).content
        )
    ).job_id
    status = await wait_for_job(validator_client, miner, job_id, finished)
    assert status.manifest_url is not None
    manifest = json.loads(
        (await validator_client.get(miner.url + status.manifest_url, miner.hotkey)).content
    )
    key = next(k for k in sorted(manifest["manifest"]["files"]) if "/c/" in k)
    url = miner.url + forecast_file_path(job_id, key)
    whole = (await validator_client.get(url, miner.hotkey)).content

    part = await validator_client.get(url, miner.hotkey, headers={"Range": "bytes=4-11"})
    assert part.status_code == 206
    assert part.content == whole[4:12]
    assert part.headers["content-range"] == f"bytes 4-11/{len(whole)}"

    head = await validator_client.request("HEAD", url, miner.hotkey)
    assert head.status_code == 200
    assert int(head.headers["content-length"]) == len(whole) and head.content == b""


async def test_unknown_job_is_404(miner: MinerProcess, validator_client: SignedClient) -> None:
    response = await validator_client.get(
        miner.url + "/weather/jobs/00000000-0000-5000-8000-000000000000", miner.hotkey
    )
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
    assert isinstance(response, httpx.Response)

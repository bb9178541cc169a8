"""Every refusal of the miner, through a real process and real signatures: 401 for bad
authentication, 403 for callers that are not accepted validators, 404 for paths outside
the store, 409/422 for bad requests, 413 for big bodies, 429 past the rate limit. A refused
request creates no job."""

from __future__ import annotations

import json
from datetime import datetime

import httpx
import pytest
from bittensor import http_auth

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.protocol import (
    INITIATE_FETCH_PATH,
    forecast_file_path,
    job_status_path,
    manifest_url_path,
)
from tests.fixtures.miner import (
    MinerProcess,
    count_jobs,
    finished,
    initiate,
    initiate_body,
    new_miner,
    wait_for_job,
)


async def ready_job(client: SignedClient, miner: MinerProcess, init_time: datetime) -> str:
    job_id = str((await initiate(client, miner, init_time)).json()["job_id"])
    status = await wait_for_job(client, miner, job_id, finished)
    assert status.manifest_url is not None, status
    return job_id


def assert_refused(response: httpx.Response, status: int, error: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert response.json()["message"]


async def test_unsigned_request_is_401(miner: MinerProcess, miner_archive) -> None:
    before = count_jobs(miner)
    async with httpx.AsyncClient() as plain:
        response = await plain.post(
            miner.url + INITIATE_FETCH_PATH,
            json=initiate_body(miner.hotkey, miner_archive.init_time),
        )
    assert_refused(response, 401, "unauthenticated")
    assert count_jobs(miner) == before


async def test_replayed_request_is_401(miner: MinerProcess, miner_identities) -> None:
    path = job_status_path("00000000-0000-5000-8000-000000000000")
    headers = http_auth.sign(
        miner_identities.validator, method="GET", path=path, receiver_ss58=miner.hotkey
    )
    async with httpx.AsyncClient() as plain:
        first = await plain.get(miner.url + path, headers=headers)
        replay = await plain.get(miner.url + path, headers=headers)
    assert first.status_code == 404
    assert_refused(replay, 401, "unauthenticated")
    assert "Replayed" in replay.json()["message"]


async def test_wrong_receiver_is_401(miner: MinerProcess, miner_identities) -> None:
    async with SignedClient(miner_identities.validator, timeout=10.0) as client:
        response = await client.get(
            miner.url + job_status_path("00000000-0000-5000-8000-000000000000"),
            miner_identities.second_validator.hotkey.ss58_address,
        )
    assert_refused(response, 401, "unauthenticated")
    assert "WrongReceiver" in response.json()["message"]


async def test_tampered_body_is_401(miner: MinerProcess, miner_identities, miner_archive) -> None:
    body = json.dumps(initiate_body(miner.hotkey, miner_archive.init_time)).encode()
    headers = http_auth.sign(
        miner_identities.validator,
        method="POST",
        path=INITIATE_FETCH_PATH,
        body=body,
        receiver_ss58=miner.hotkey,
    )
    async with httpx.AsyncClient() as plain:
        response = await plain.post(
            miner.url + INITIATE_FETCH_PATH,
            content=body.replace(b"06:00", b"12:00"),
            headers=headers,
        )
    assert_refused(response, 401, "unauthenticated")
    assert "BadSignature" in response.json()["message"]


@pytest.mark.parametrize("who", ["non_validator", "stranger"])
async def test_callers_that_are_not_validators_are_403(
    miner: MinerProcess, miner_identities, miner_archive, who: str
) -> None:
    before = count_jobs(miner)
    async with SignedClient(getattr(miner_identities, who), timeout=10.0) as client:
        response = await initiate(client, miner, miner_archive.init_time)
    assert_refused(response, 403, "forbidden")
    assert count_jobs(miner) == before


async def test_forecast_reads_by_non_validators_are_403(
    miner: MinerProcess, miner_identities, miner_archive, validator_client: SignedClient
) -> None:
    job_id = await ready_job(validator_client, miner, miner_archive.init_time)
    async with SignedClient(miner_identities.non_validator, timeout=10.0) as client:
        manifest = await client.get(miner.url + manifest_url_path(job_id), miner.hotkey)
        chunk = await client.get(miner.url + forecast_file_path(job_id, "2t/c/0/0/0"), miner.hotkey)
        status = await client.get(miner.url + job_status_path(job_id), miner.hotkey)
    for response in (manifest, chunk, status):
        assert_refused(response, 403, "forbidden")


@pytest.mark.parametrize(
    "key",
    [
        "%2e%2e/%2e%2e/miner.sqlite3",
        "..%2F..%2Fminer.sqlite3",
        "%2Fetc%2Fpasswd",
        "/etc/passwd",
        "2t/c/0/0/0/../../../../../miner.sqlite3".replace("..", "%2e%2e"),
        "2t/c/999/0/0",
        "manifest.json.partial",
    ],
)
async def test_paths_outside_the_manifest_are_404(
    miner: MinerProcess, miner_archive, validator_client: SignedClient, key: str
) -> None:
    job_id = await ready_job(validator_client, miner, miner_archive.init_time)
    assert (miner.data_dir / "miner.sqlite3").exists()
    response = await validator_client.get(
        f"{miner.url}/weather/forecasts/{job_id}/{key}", miner.hotkey
    )
    assert_refused(response, 404, "not_found")


@pytest.mark.parametrize(
    ("init_time", "fragment"),
    [
        ("2025-01-01T03:00:00Z", "not a 6-hourly GFS cycle"),
        ("2025-01-01T06:00:00", "no timezone"),
        ("2100-01-01T00:00:00Z", "in the future"),
    ],
)
async def test_cycles_outside_the_schedule_are_422(
    miner: MinerProcess, validator_client: SignedClient, init_time: str, fragment: str
) -> None:
    before = count_jobs(miner)
    body = {
        "gfs_init_time": init_time,
        "expected_miner_hotkey": miner.hotkey,
        "protocol_version": "2",
    }
    response = await validator_client.post(miner.url + INITIATE_FETCH_PATH, miner.hotkey, json=body)
    assert response.status_code == 422, response.text
    assert fragment in response.json()["message"]
    assert count_jobs(miner) == before


async def test_malformed_json_is_422(miner: MinerProcess, validator_client: SignedClient) -> None:
    response = await validator_client.post(
        miner.url + INITIATE_FETCH_PATH, miner.hotkey, content=b"{not json"
    )
    assert_refused(response, 422, "invalid_request")


async def test_request_for_another_miner_is_refused(
    miner: MinerProcess, miner_identities, miner_archive, validator_client: SignedClient
) -> None:
    other = miner_identities.second_validator.hotkey.ss58_address
    body = initiate_body(other, miner_archive.init_time)
    response = await validator_client.post(miner.url + INITIATE_FETCH_PATH, miner.hotkey, json=body)
    assert_refused(response, 409, "wrong_miner_hotkey")
    assert miner.hotkey in response.json()["message"]


async def test_oversized_body_is_413(
    miner: MinerProcess, miner_archive, validator_client: SignedClient
) -> None:
    body = initiate_body(miner.hotkey, miner_archive.init_time) | {"padding": "x" * 20_000}
    response = await validator_client.post(miner.url + INITIATE_FETCH_PATH, miner.hotkey, json=body)
    assert_refused(response, 413, "payload_too_large")


async def test_rate_limit_is_429(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    limited = new_miner(
        miner_identities, miner_archive, tmp_path, extra_args=("--rate-limit-per-minute", "3")
    )
    miner_processes.append(limited.start())
    url = limited.url + job_status_path("00000000-0000-5000-8000-000000000000")
    codes = [(await validator_client.get(url, limited.hotkey)).status_code for _ in range(4)]
    assert codes == [404, 404, 404, 429]
    async with SignedClient(miner_identities.second_validator, timeout=10.0) as other:
        assert (await other.get(url, limited.hotkey)).status_code == 404  # per hotkey

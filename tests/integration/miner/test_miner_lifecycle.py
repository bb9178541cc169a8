"""Job failure, crash recovery and axon publication of a real ``python -m gaia.miner``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import pytest

from gaia.chain.static import StaticChainClient
from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.forecast_manifest import verify_signed_manifest
from gaia.tasks.defined_tasks.weather.protocol import JobStatusResponse, MinerJobStatus
from tests.fixtures.database import create_database, drop_database
from tests.fixtures.miner import (
    finished,
    initiate,
    job_row,
    job_statuses,
    new_miner,
    wait_for_job,
)


async def test_a_failing_model_fails_the_job_with_its_reason(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    miner = new_miner(
        miner_identities, miner_archive, tmp_path, model="tests.fixtures.miner:FailingModel",
        extra_args=("--job-retry-backoff-s", "0"),  # the backoff has its own test
    )
    miner_processes.append(miner.start())
    job_id = (await initiate(validator_client, miner, miner_archive.init_time)).json()["job_id"]

    status = await wait_for_job(validator_client, miner, job_id, finished)
    assert status.status is MinerJobStatus.FAILED
    assert status.error == "FloatingPointError: model diverged at lead 18 h"
    assert (status.progress.leads_done, status.manifest_hash) == (2, None)
    assert not (miner.data_dir / "forecasts" / job_id).exists()

    retried = await initiate(validator_client, miner, miner_archive.init_time)
    assert retried.json() == {"job_id": job_id, "status": "fetching_inputs"}
    again = await wait_for_job(validator_client, miner, job_id, finished)
    assert again.status is MinerJobStatus.FAILED
    assert job_row(miner, job_id)["attempts"] == 2


def _running_with_progress(status: JobStatusResponse) -> bool:
    assert status.status is not MinerJobStatus.FAILED, status.error
    return status.status is MinerJobStatus.INFERENCE_RUNNING and status.progress.leads_done >= 3


async def test_a_job_killed_mid_inference_resumes_after_restart(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    miner = new_miner(
        miner_identities, miner_archive, tmp_path, model="tests.fixtures.miner:SlowPersistence"
    )
    miner_processes.append(miner.start())
    job_id = (await initiate(validator_client, miner, miner_archive.init_time)).json()["job_id"]
    await wait_for_job(validator_client, miner, job_id, _running_with_progress)

    miner.kill()
    row = job_row(miner, job_id)
    assert (row["status"], row["attempts"]) == ("inference_running", 1)
    assert 3 <= int(row["leads_done"]) < 40  # type: ignore[call-overload]

    miner.start()
    status = await wait_for_job(validator_client, miner, job_id, finished)
    assert status.status is MinerJobStatus.FORECAST_READY, status.error
    assert job_row(miner, job_id)["attempts"] == 2
    assert status.manifest_url is not None
    document = await validator_client.get(miner.url + status.manifest_url, miner.hotkey)
    signed = verify_signed_manifest(document.content, miner.hotkey)
    assert signed.manifest_hash == status.manifest_hash
    assert "resuming job " + job_id in miner.log_tail(10**6)


async def test_serve_axon_publishes_the_address(
    miner_identities, miner_archive, tmp_path, miner_processes
) -> None:
    miner = new_miner(miner_identities, miner_archive, tmp_path, extra_args=("--serve-axon",))
    miner_processes.append(miner.start())
    chain = StaticChainClient(miner_identities.chain_path, hotkey=miner.hotkey)
    mine = next(n for n in await chain.metagraph() if n.hotkey == miner.hotkey)
    assert (mine.ip, mine.port) == ("127.0.0.1", miner.port)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    name = f"gaia_miner_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


async def test_the_miner_keeps_its_jobs_in_postgresql(
    miner_identities,
    miner_archive,
    tmp_path,
    miner_processes,
    validator_client: SignedClient,
    postgres_url: str,
) -> None:
    miner = new_miner(
        miner_identities, miner_archive, tmp_path, extra_args=("--database-url", postgres_url)
    )
    miner_processes.append(miner.start())
    response = await initiate(validator_client, miner, miner_archive.init_time)
    job_id = response.json()["job_id"]
    status = await wait_for_job(validator_client, miner, job_id, finished)
    assert status.status is MinerJobStatus.FORECAST_READY, status.error
    assert not miner.database_path.exists()
    miner.stop()
    conn = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        row = await conn.fetchrow(
            "SELECT status, attempts, manifest_hash FROM miner_forecast_jobs WHERE job_id = $1",
            job_id,
        )
        nonces = await conn.fetchval("SELECT count(*) FROM miner_auth_nonces")
    finally:
        await conn.close()
    assert tuple(row) == ("forecast_ready", 1, status.manifest_hash)
    assert nonces >= 2


async def test_inference_runs_one_job_at_a_time_by_default(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    miner = new_miner(
        miner_identities, miner_archive, tmp_path, model="tests.fixtures.miner:SlowPersistence"
    )
    miner_processes.append(miner.start())
    first, second = miner_archive.info.init_times[:2]
    jobs = {
        (await initiate(validator_client, miner, init)).json()["job_id"] for init in (first, second)
    }
    seen_running: set[str] = set()
    while True:
        statuses = job_statuses(miner)  # one SELECT: a consistent snapshot of both jobs
        running = {job_id for job_id, status in statuses.items() if status == "inference_running"}
        assert len(running) <= 1, statuses
        seen_running |= running
        if set(statuses.values()) <= {"forecast_ready", "failed"}:
            break
        await asyncio.sleep(0.05)
    assert statuses == dict.fromkeys(jobs, "forecast_ready")
    assert seen_running == jobs  # each was seen inferring, never both at once

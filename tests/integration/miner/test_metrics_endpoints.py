"""The miner's unsigned ``/metrics`` and ``/healthz``, scraped from a real ``python -m
gaia.miner`` on loopback: the series move when a request is refused and when a forecast
job runs; health names the model and turns 503 when the database goes away."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import httpx

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.protocol import INITIATE_FETCH_PATH
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS
from tests.fixtures.database import _admin, async_url, server_url
from tests.fixtures.identified_model import IDENTITY
from tests.fixtures.metrics import healthz, scrape, total, value
from tests.fixtures.miner import (
    MinerArchive,
    MinerIdentities,
    MinerProcess,
    finished,
    initiate,
    initiate_body,
    new_miner,
    wait_for_job,
)

INITIATE_ROUTE = "/weather/initiate-fetch"










def started(identities: MinerIdentities, archive: MinerArchive, data_dir: Path,
            processes: list[MinerProcess], **options: object) -> MinerProcess:
    miner = new_miner(identities, archive, data_dir, **options)  # type: ignore[arg-type]
    processes.append(miner)
    return miner.start()


async def test_refusals_are_counted_by_status_and_code(
    miner_identities, miner_archive, miner_processes, tmp_path: Path,
) -> None:
    miner = started(miner_identities, miner_archive, tmp_path / "miner", miner_processes)
    before = await scrape(miner.url)
    async with httpx.AsyncClient() as plain:
        unsigned = await plain.post(miner.url + INITIATE_FETCH_PATH,
                                    json=initiate_body(miner.hotkey, miner_archive.init_time))
        too_big = await plain.post(miner.url + INITIATE_FETCH_PATH, content=b"x" * 20_000)
    assert (unsigned.status_code, too_big.status_code) == (401, 413)
    async with SignedClient(miner_identities.stranger, timeout=10.0) as stranger:
        assert (await initiate(stranger, miner, miner_archive.init_time)).status_code == 403
    after = await scrape(miner.url)

    for status, reason in (("401", "unauthenticated"), ("413", "payload_too_large"),
                           ("403", "forbidden")):
        moved = (value(after, "gaia_miner_refusals_total", status=status, reason=reason)
                 - value(before, "gaia_miner_refusals_total", status=status, reason=reason))
        assert moved == 1, (status, reason)
    assert value(after, "gaia_miner_requests_total", route=INITIATE_ROUTE, status="401") == 1
    assert value(after, "gaia_miner_requests_total", route=INITIATE_ROUTE, status="403") == 1
    # the scrape before is counted too, and a scrape is never a refusal
    assert value(after, "gaia_miner_requests_total", route="/metrics", status="200") >= 1
    assert total(after, "gaia_miner_forecast_jobs_total") == 0


async def test_connections_closed_before_any_request_are_counted(
    miner_identities, miner_archive, miner_processes, tmp_path: Path,
) -> None:
    miner = started(miner_identities, miner_archive, tmp_path / "miner", miner_processes,
                    extra_args=("--max-connections-per-address", "2",
                                "--request-read-timeout-s", "1"))
    before = await scrape(miner.url)
    held = [await asyncio.open_connection("127.0.0.1", miner.port) for _ in range(3)]
    held[0][1].write(b"GET /metrics HTTP/1.1\r\n")  # a request head never finished
    for reader, _writer in held:  # each is closed: at accept (over the cap) or at the deadline
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
    for _reader, writer in held:
        writer.close()
    after = await scrape(miner.url)

    def moved(reason: str) -> float:
        name = "gaia_miner_connections_refused_total"
        return value(after, name, reason=reason) - value(before, name, reason=reason)

    # the first is always accepted; the baseline scrape's connection may still hold the
    # second place for a moment, so one or two are over the cap
    assert moved("request_read_timeout") >= 1 and moved("max_connections_per_address") >= 1
    assert moved("request_read_timeout") + moved("max_connections_per_address") == 3
    assert moved("max_connections") == 0


async def test_a_forecast_job_moves_jobs_inference_and_outcome_series(
    miner_identities, miner_archive, miner_processes, validator_client, tmp_path: Path,
) -> None:
    miner = started(miner_identities, miner_archive, tmp_path / "miner", miner_processes)
    before = await scrape(miner.url)
    assert value(before, "gaia_miner_database_up") == 1
    assert total(before, "gaia_miner_jobs") == 0
    assert total(before, "gaia_miner_inference_seconds_count") == 0

    answer = await initiate(validator_client, miner, miner_archive.init_time)
    assert answer.status_code == 200, answer.text
    status = await wait_for_job(validator_client, miner, answer.json()["job_id"], finished)
    assert status.status.value == "forecast_ready", status
    after = await scrape(miner.url)

    assert value(after, "gaia_miner_forecast_jobs_total", outcome="ready") == 1
    assert value(after, "gaia_miner_jobs", state="forecast_ready") == 1
    for lead in (FORECAST_LEAD_HOURS[0], FORECAST_LEAD_HOURS[-1]):
        assert value(after, "gaia_miner_inference_seconds_count", lead_hours=str(lead)) == 1
    assert total(after, "gaia_miner_inference_seconds_count") == len(FORECAST_LEAD_HOURS)
    assert total(after, "gaia_miner_inference_seconds_sum") > 0
    assert value(after, "gaia_miner_requests_total", route=INITIATE_ROUTE, status="200") == 1
    assert value(after, "gaia_miner_requests_total",
                 route="/weather/jobs/{job_id}", status="200") >= 1


async def test_healthz_names_the_model_and_its_identity(
    miner_identities, miner_archive, miner_processes, tmp_path: Path,
) -> None:
    plain_model = started(miner_identities, miner_archive, tmp_path / "a", miner_processes)
    response = await healthz(plain_model.url)
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "model": "persistence"}
    plain_model.stop()

    identified = started(miner_identities, miner_archive, tmp_path / "b", miner_processes,
                         model="tests.fixtures.identified_model:IdentifiedPersistence")
    body = (await healthz(identified.url)).json()
    assert body["model"] == "tests.fixtures.identified_model:IdentifiedPersistence"
    assert body["model_identity"] == IDENTITY


async def test_healthz_is_503_once_the_database_is_gone(
    miner_identities, miner_archive, miner_processes, tmp_path: Path,
) -> None:
    name = f"gaia_test_miner_{uuid.uuid4().hex[:8]}"
    await _admin(server_url(), f'CREATE DATABASE "{name}"')
    url = async_url(server_url(), name)
    try:
        miner = started(miner_identities, miner_archive, tmp_path / "miner", miner_processes,
                        extra_args=("--database-url", url))
        assert (await healthz(miner.url)).status_code == 200
        await _admin(server_url(), f'DROP DATABASE "{name}" WITH (FORCE)')
        response = await healthz(miner.url)
        assert response.status_code == 503
        assert response.json()["database"] == "unreachable"
        samples = await scrape(miner.url)
        assert value(samples, "gaia_miner_database_up") == 0
        assert total(samples, "gaia_miner_jobs") == 0
    finally:
        await _admin(server_url(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

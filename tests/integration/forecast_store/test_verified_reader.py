"""Verified reads of a real store over real signed HTTP on loopback."""

from __future__ import annotations

import shutil
import socket
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import xarray as xr

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    FetchPolicy,
    ForecastInvalid,
    ForecastTransportError,
    VerifiedForecast,
    check_manifest_against_run,
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from tests.fixtures.forecast_server import ForecastServer, running_forecast_server
from tests.fixtures.forecast_store import (
    INIT_TIME,
    SMALL_GRID,
    SMALL_LEADS,
    SMALL_LEVELS,
    WrittenForecast,
    new_keypair,
    write_small_forecast,
)

FAST = FetchPolicy(attempts=3, backoff_s=(0.01, 0.02))
JOB = "job-1"


@pytest.fixture
def written(tmp_path: Path) -> WrittenForecast:
    return write_small_forecast(tmp_path / JOB, new_keypair(), job_id=JOB)


@pytest.fixture
def server(written: WrittenForecast) -> Iterator[ForecastServer]:
    with running_forecast_server(written.keypair.ss58_address) as state:
        state.stores[JOB] = written.root
        yield state


@pytest.fixture
async def client() -> AsyncIterator[SignedClient]:
    async with SignedClient(new_keypair(), timeout=5.0) as signed:
        yield signed


async def _open(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> VerifiedForecast:
    signed = await fetch_verified_manifest(
        client, server.base_url, JOB, written.keypair.ss58_address, policy=FAST
    )
    return await open_verified_forecast(
        client, server.base_url, JOB, signed.manifest, signed.manifest_hash, policy=FAST
    )


def _on_disk(written: WrittenForecast, lead: int) -> LeadFields:
    """The lead as zarr itself decodes the store the miner wrote (the reader's oracle)."""
    with xr.open_zarr(written.root, consolidated=True, zarr_format=3, chunks=None) as ds:
        return LeadFields.from_dataset(ds.sel(lead_hours=lead).load())


def _field_chunk_requests(server: ForecastServer) -> Counter[str]:
    return Counter({key: count for key, count in server.requests.items() if "/c/" in key
                    and key.split("/")[0] not in ("lead_hours", "level", "latitude", "longitude")})


async def test_open_exposes_the_manifest_s_grid_leads_and_fields(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    manifest = written.signed.manifest
    assert forecast.manifest == manifest
    assert forecast.grid == SMALL_GRID
    assert forecast.lead_hours == SMALL_LEADS
    assert set(forecast.fields) == {(name, level) for name in ("t", "u", "v", "q", "z")
                                    for level in SMALL_LEVELS} | {
        (name, None) for name in ("2t", "10u", "10v", "msl")}
    assert not _field_chunk_requests(server)  # opening reads no field chunk


async def test_clean_read_equals_written_data_and_reads_only_that_lead(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    lead = await load_lead(forecast, 24)
    expected = _on_disk(written, 24)
    assert lead.grid == SMALL_GRID and set(lead) == set(expected) == set(forecast.fields)
    for key, values in expected.items():
        assert lead[key].dtype == np.float32 and lead[key].shape == SMALL_GRID.shape
        np.testing.assert_array_equal(lead[key], values)
    lead_index = SMALL_LEADS.index(24)
    assert set(_field_chunk_requests(server)) == {
        k for k in written.signed.manifest.files
        if "/c/" in k and k.split("/")[2] == str(lead_index)
        and k.split("/")[0] in written.signed.manifest.variables}


async def test_a_field_selection_fetches_exactly_those_chunks(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    index = SMALL_LEADS.index(24)
    lead = await load_lead(forecast, 24, fields=[("2t", None), ("z", 500), ("t", 850)])
    assert _field_chunk_requests(server) == Counter(
        {chunk_key("2t", index, None): 1, chunk_key("z", index, 0): 1, chunk_key("t", index, 1): 1})
    expected = _on_disk(written, 24)
    assert set(lead) == {("2t", None), ("z", 500), ("t", 850)}
    for key in lead:
        np.testing.assert_array_equal(lead[key], expected[key])


async def test_fields_the_manifest_does_not_declare_are_absent_and_fetch_nothing(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    lead = await load_lead(forecast, 24, fields=[("msl", None), ("z", 1000), ("2t", 500),
                                                 ("z", None), ("tp", None), ("msl", None)])
    assert set(lead) == {("msl", None)}
    assert _field_chunk_requests(server) == Counter({chunk_key("msl", SMALL_LEADS.index(24), None): 1})
    assert len(await load_lead(forecast, 24, fields=[])) == 0
    with pytest.raises(KeyError, match="lead 30 h is not in the forecast"):
        await load_lead(forecast, 30)


async def test_tampered_chunk_is_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    path = written.root / chunk_key("z", 1, 0)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    await load_lead(forecast, SMALL_LEADS[0])
    with pytest.raises(ForecastInvalid, match="z/c/1/0/0/0: sha256 differs"):
        await load_lead(forecast, SMALL_LEADS[1])


async def test_grown_chunk_is_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    path = written.root / chunk_key("2t", 2, None)
    path.write_bytes(path.read_bytes() + b"extra")
    with pytest.raises(ForecastInvalid, match="more than"):
        await load_lead(forecast, SMALL_LEADS[2])


async def test_deleted_chunk_is_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    (written.root / chunk_key("msl", 3, None)).unlink()
    with pytest.raises(ForecastInvalid, match=r"msl/c/3/0/0 is missing \(HTTP 404\)"):
        await load_lead(forecast, SMALL_LEADS[3])


async def test_swapped_manifest_is_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast, tmp_path: Path
) -> None:
    committed = (await fetch_verified_manifest(
        client, server.base_url, JOB, written.keypair.ss58_address, policy=FAST)).manifest_hash
    other = write_small_forecast(tmp_path / "other", written.keypair, job_id=JOB, model="persistence")
    shutil.rmtree(written.root)
    shutil.copytree(other.root, written.root)
    with pytest.raises(ForecastInvalid, match="differs from the committed"):
        await fetch_verified_manifest(client, server.base_url, JOB, written.keypair.ss58_address,
                                      committed, policy=FAST)
    with pytest.raises(ForecastInvalid, match="differs from the committed"):
        await open_verified_forecast(client, server.base_url, JOB, other.signed.manifest, committed)


async def test_manifest_signed_by_another_key_is_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast, tmp_path: Path
) -> None:
    impostor = write_small_forecast(tmp_path / "impostor", new_keypair(), job_id=JOB)
    server.stores[JOB] = impostor.root
    with pytest.raises(ForecastInvalid, match="expected the miner"):
        await fetch_verified_manifest(client, server.base_url, JOB, written.keypair.ss58_address,
                                      policy=FAST)


async def test_one_503_is_retried_and_read(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    forecast = await _open(client, server, written)
    key = chunk_key("t", 0, 1)
    server.fail_next[key] = [503]
    lead = await load_lead(forecast, SMALL_LEADS[0])
    np.testing.assert_array_equal(lead[("t", 850)], _on_disk(written, SMALL_LEADS[0])[("t", 850)])
    assert server.requests[key] == 2


async def test_persistent_503_is_a_transport_error_not_invalid(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    server.fail_next["manifest.json"] = [503, 502, 500]
    with pytest.raises(ForecastTransportError, match="HTTP 500 .after 3 attempts"):
        await fetch_verified_manifest(client, server.base_url, JOB, written.keypair.ss58_address,
                                      policy=FAST)


async def test_connection_refused_is_a_transport_error(client: SignedClient) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ForecastTransportError, match="ConnectError"):
        await fetch_verified_manifest(client, f"http://127.0.0.1:{port}", JOB, "5Fake", policy=FAST)


async def test_unsigned_requests_are_refused(server: ForecastServer) -> None:
    async with httpx.AsyncClient() as plain:
        response = await plain.get(f"{server.base_url}/weather/forecasts/{JOB}/manifest.json")
    assert response.status_code == 401


def test_manifest_is_checked_against_the_run(written: WrittenForecast) -> None:
    manifest = written.signed.manifest
    check_manifest_against_run(manifest, init_time=INIT_TIME, run_grid=SMALL_GRID)
    check_manifest_against_run(
        manifest, init_time=INIT_TIME, run_grid=Grid.regular(10.0, descending=False)
    )
    with pytest.raises(ForecastInvalid, match="init time"):
        check_manifest_against_run(manifest, init_time=INIT_TIME + np.timedelta64(6, "h"),
                                   run_grid=SMALL_GRID)
    with pytest.raises(ForecastInvalid, match="grid"):
        check_manifest_against_run(manifest, init_time=INIT_TIME, run_grid=Grid.regular(5.0))
    with pytest.raises(ForecastInvalid, match="lead hours outside the run"):
        check_manifest_against_run(manifest, init_time=INIT_TIME, run_grid=SMALL_GRID,
                                   lead_hours=(6, 12))
    files = dict(manifest.files)
    del files[chunk_key("u", 2, 1)]
    holey = manifest.model_copy(update={"files": files})
    with pytest.raises(ForecastInvalid, match="does not list 1 declared files"):
        check_manifest_against_run(holey, init_time=INIT_TIME, run_grid=SMALL_GRID)


def test_oversized_files_are_invalid(written: WrittenForecast) -> None:
    manifest = written.signed.manifest
    files = dict(manifest.files)
    key = chunk_key("z", 0, 0)
    files[key] = files[key].model_copy(update={"size": 10**9})
    bloated = manifest.model_copy(update={"files": files})
    with pytest.raises(ForecastInvalid, match="exceed"):
        check_manifest_against_run(bloated, init_time=INIT_TIME, run_grid=SMALL_GRID)


async def test_chunk_missing_from_the_manifest_is_invalid_not_a_fill_value(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    manifest = written.signed.manifest
    files = dict(manifest.files)
    del files[chunk_key("v", 1, 1)]
    holey = manifest.model_copy(update={"files": files})
    forecast = await open_verified_forecast(
        client, server.base_url, JOB, holey, holey.manifest_hash, policy=FAST
    )
    await load_lead(forecast, SMALL_LEADS[0])
    with pytest.raises(ForecastInvalid, match=r"v/c/1/1/0/0 is not listed in the manifest"):
        await load_lead(forecast, SMALL_LEADS[1])
    assert server.requests[chunk_key("v", 1, 1)] == 0


async def test_reads_run_concurrently_within_the_bound(
    client: SignedClient, server: ForecastServer, written: WrittenForecast
) -> None:
    signed = written.signed
    server.delay_s = 0.05
    for bound in (2, 8):
        server.max_in_flight = 0
        policy = FetchPolicy(max_concurrency=bound, attempts=1)
        forecast = await open_verified_forecast(
            client, server.base_url, JOB, signed.manifest, signed.manifest_hash, policy=policy
        )
        server.max_in_flight = 0
        await load_lead(forecast, SMALL_LEADS[0])
        assert 1 < server.max_in_flight <= bound

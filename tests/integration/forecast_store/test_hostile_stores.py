"""A hostile miner on loopback: stores it corrupted and re-signed, redirects and trickled
bytes. Each is the miner's fault, so each is ``ForecastInvalid`` (one attempt), raised
before the offending bytes are decoded."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numcodecs import Blosc, GZip, Zstd

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.forecast_codec import FIELD_CLEVEL, FIELD_CNAME
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    FetchPolicy,
    ForecastInvalid,
    fetch_verified_manifest,
    load_lead,
    open_verified_forecast,
)
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from tests.fixtures.forecast_store import (
    SMALL_GRID,
    SMALL_LEADS,
    WrittenForecast,
    new_keypair,
    write_small_forecast,
)
from tests.fixtures.hostile_miner import (
    HostileMiner,
    blosc_field,
    resign,
    rewrite_array_metadata,
    running_hostile_miner,
    zstd_bomb,
)

FAST = FetchPolicy(attempts=3, backoff_s=(0.01, 0.02))
JOB = "job-1"
BOMB_BYTES = 64 * 1024 * 1024
_PROTOCOL_BLOSC = Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.BITSHUFFLE)
"""The protocol's compressor without its bit rounding."""


@pytest.fixture
def written(tmp_path: Path) -> WrittenForecast:
    return write_small_forecast(tmp_path / JOB, new_keypair(), job_id=JOB)


@pytest.fixture
def miner(written: WrittenForecast) -> Iterator[HostileMiner]:
    with running_hostile_miner(written.keypair, {JOB: written.root}) as state:
        yield state


@pytest.fixture
async def client() -> AsyncIterator[SignedClient]:
    async with SignedClient(new_keypair(), timeout=5.0) as signed:
        yield signed


async def _read_day1(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast,
    policy: FetchPolicy = FAST,
) -> None:
    signed = await fetch_verified_manifest(
        client, miner.base_url, JOB, written.keypair.ss58_address, policy=policy
    )
    forecast = await open_verified_forecast(
        client, miner.base_url, JOB, signed.manifest, signed.manifest_hash, policy=policy
    )
    await load_lead(forecast, 24)


def _recode_array(root: Path, array: str, codec_json: dict[str, Any], encode: Any) -> None:
    """Switch field ``array`` to another compressor and re-encode its chunks with it: a
    store that zarr reads without complaint, but not in the protocol's codec."""
    def edit(meta: dict[str, Any]) -> None:
        meta["codecs"] = [meta["codecs"][0], codec_json]
    rewrite_array_metadata(root, array, edit)
    for path in sorted(p for p in (root / array / "c").rglob("*") if p.is_file()):
        path.write_bytes(bytes(encode(Blosc().decode(path.read_bytes()))))


async def test_the_honest_store_reads(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    await _read_day1(client, miner, written)


async def test_another_compressor_is_invalid_though_zarr_could_read_it(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    _recode_array(written.root, "2t", {"name": "gzip", "configuration": {"level": 5}},
                  GZip(5).encode)
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=r"zarr.json differs .*2t\.codecs"):
        await _read_day1(client, miner, written)


async def test_an_extra_filter_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    rewrite_array_metadata(written.root, "msl", lambda meta: meta["codecs"].append(
        {"name": "crc32c"}))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=r"msl\.codecs"):
        await _read_day1(client, miner, written)


async def test_a_zstd_bomb_in_a_data_chunk_is_invalid_before_it_is_inflated(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    _recode_array(written.root, "2t", {"name": "zstd", "configuration": {"level": 0,
                                                                        "checksum": False}},
                  Zstd().encode)
    (written.root / chunk_key("2t", SMALL_LEADS.index(24), None)).write_bytes(zstd_bomb(BOMB_BYTES))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=r"2t\.codecs"):
        await _read_day1(client, miner, written)


@pytest.mark.parametrize("declare_size", [True, False])
async def test_a_zstd_bomb_in_lead_hours_is_invalid_before_it_is_inflated(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast, declare_size: bool
) -> None:
    """No metadata changes: the coordinates are read when the store is opened."""
    (written.root / "lead_hours" / "c" / "0").write_bytes(
        zstd_bomb(BOMB_BYTES, declare_size=declare_size))
    resign(written.root, written.keypair)
    reason = "declares 67108864 decoded bytes" if declare_size else "does not declare its content size"
    with pytest.raises(ForecastInvalid, match=f"lead_hours/c/0.*{reason}"):
        await _read_day1(client, miner, written)


async def test_two_zstd_frames_in_a_coordinate_are_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    path = written.root / "latitude" / "c" / "0"
    path.write_bytes(path.read_bytes() * 2)
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match="latitude/c/0 does not decode"):
        await _read_day1(client, miner, written)


def _nan_at_3(values: np.ndarray) -> np.ndarray:
    return np.where(np.arange(values.size) == 3, np.nan, values)


@pytest.mark.parametrize(("array", "dtype", "edit", "reason"), [
    pytest.param("lead_hours", "<i4", lambda v: v + 1, "lead_hours differ", id="lead-hours"),
    pytest.param("level", "<i4", lambda v: v[::-1], "levels differ", id="levels"),
    pytest.param("latitude", "<f8", lambda v: v + 0.5, "latitude differs", id="shifted-grid"),
    pytest.param("latitude", "<f8", _nan_at_3, "latitude differs", id="nan-latitude"),
])
async def test_coordinates_other_than_the_manifest_s_are_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast,
    array: str, dtype: str, edit: Any, reason: str,
) -> None:
    """Well-formed coordinate chunks of the right size whose values the manifest does not say."""
    path = written.root / array / "c" / "0"
    values = np.frombuffer(Zstd().decode(path.read_bytes()), dtype=dtype)
    path.write_bytes(bytes(Zstd(level=0).encode(np.ascontiguousarray(edit(values), dtype=dtype))))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=reason):
        await _read_day1(client, miner, written)


@pytest.mark.parametrize("factor", [0.5, 2, 8])
async def test_a_chunk_whose_decoded_size_is_not_its_shape_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast, factor: float
) -> None:
    """Protocol codec, well-formed Blosc, but more (a bomb) or fewer values than the shape."""
    n_values = int(SMALL_GRID.shape[0] * SMALL_GRID.shape[1] * factor)
    key = chunk_key("z", SMALL_LEADS.index(24), 0)
    (written.root / key).write_bytes(blosc_field(np.zeros(n_values, dtype=np.float32)))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=f"{key} declares {n_values * 4} decoded bytes"):
        await _read_day1(client, miner, written)


async def test_an_array_shape_contradicting_the_manifest_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    def one_more_lead(meta: dict[str, Any]) -> None:
        meta["shape"][0] += 1
    rewrite_array_metadata(written.root, "z", one_more_lead)
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=r"z\.shape is \[5, 2, 19, 36\]"):
        await _read_day1(client, miner, written)


@pytest.mark.parametrize("edit", [
    pytest.param(lambda meta: meta.update(fill_value=0.0), id="fill-value"),
    pytest.param(lambda meta: meta.update(data_type="float64"), id="dtype"),
    pytest.param(lambda meta: meta.update(storage_transformers=[{"name": "sharding"}]),
                 id="storage-transformer"),
    pytest.param(lambda meta: meta.update(extra=True), id="unknown-key"),
])
async def test_metadata_the_writer_would_not_produce_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast, edit: Any
) -> None:
    rewrite_array_metadata(written.root, "t", edit)
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match="differs from the protocol's layout"):
        await _read_day1(client, miner, written)


async def test_an_unknown_array_in_the_consolidated_metadata_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    root = json.loads((written.root / "zarr.json").read_text())
    metadata = root["consolidated_metadata"]["metadata"]
    metadata["extra"] = {**metadata["lead_hours"], "data_type": "string"}
    (written.root / "zarr.json").write_text(json.dumps(root))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match="unexpected consolidated_metadata.metadata.extra"):
        await _read_day1(client, miner, written)


async def test_a_redirected_manifest_is_invalid_at_once(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    miner.redirect.add("manifest.json")
    with pytest.raises(ForecastInvalid, match=r"redirect \(HTTP 302\)"):
        await fetch_verified_manifest(client, miner.base_url, JOB, written.keypair.ss58_address,
                                      policy=FAST)
    assert miner.requests["manifest.json"] == 1


async def test_a_trickled_chunk_fails_at_its_deadline_and_the_transfer_stops(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    """Bytes come every 0.2 s, far below the client's 5 s read timeout: without a deadline
    this chunk would take minutes, and would hold the scoring process all along."""
    policy = FetchPolicy(attempts=3, backoff_s=(0.01,), connect_timeout_s=0.5,
                         transfer_floor_s=1.0, min_rate_bytes_s=64 * 1024)
    key = chunk_key("2t", SMALL_LEADS.index(24), None)
    miner.trickle[f"{JOB}/{key}"] = 0.2
    started = time.monotonic()
    with pytest.raises(ForecastInvalid, match=f"{key} was not answered within 1.5 s"):
        await _read_day1(client, miner, written, policy)
    failed = time.monotonic()
    assert failed - started < 3.0
    assert miner.requests[key] == 1  # one attempt, not three
    for _ in range(50):  # the server notices the closed connection at its next write
        if f"{JOB}/{key}" in miner.stopped_at:
            break
        await asyncio.sleep(0.05)
    assert miner.stopped_at[f"{JOB}/{key}"] - failed < 1.0
    assert miner.sent_bytes[f"{JOB}/{key}"] < written.signed.manifest.files[key].size


async def test_a_v2_chunk_carrying_full_precision_is_invalid(
    client: SignedClient, miner: HostileMiner, written: WrittenForecast
) -> None:
    """The protocol's codec, exactly as declared, but the values not bit-rounded: the bytes
    the miner saves the validator would be a lie, so the read is refused."""
    key = chunk_key("t", SMALL_LEADS.index(24), 0)
    full = np.random.default_rng(3).normal(250.0, 20.0, SMALL_GRID.shape).astype("<f4")
    (written.root / key).write_bytes(bytes(_PROTOCOL_BLOSC.encode(full)))
    resign(written.root, written.keypair)
    with pytest.raises(ForecastInvalid, match=rf"{key}.*precision"):
        await _read_day1(client, miner, written)

"""Byte-range fetches of real GRIB2 + inventory pairs served on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import eccodes as ec
import httpx
import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.data.gfs_idx import merge_ranges, parse_inventory
from gaia.tasks.defined_tasks.weather.data.grib import check_message_bytes

from .realdata import realdata_dir

PAIRS = [
    ("gribberish_gfswave.t18z.atlocn.0p16.f001.grib2", ".idx"),
    ("wgrib2_gdaswave.t00z.wcoast.0p16.f000.grib2", ".inv"),
]


@pytest.fixture(scope="module")
def pairs_server() -> Iterator[ArchiveServer]:
    with ArchiveServer(realdata_dir("grib_idx_pairs")) as server:
        yield server


def _values_of_whole_file(path: Path) -> list[np.ndarray]:
    out = []
    with path.open("rb") as stream:
        while (handle := ec.codes_grib_new_from_file(stream)) is not None:
            out.append(ec.codes_get_values(handle))
            ec.codes_release(handle)
    return out


@pytest.mark.parametrize(("name", "inventory"), PAIRS)
async def test_ranges_decode_to_the_same_values_as_the_whole_file(
    pairs_server: ArchiveServer, tmp_path: Path, name: str, inventory: str
) -> None:
    url = f"{pairs_server.url}/{name}"
    async with httpx.AsyncClient() as client:
        entries = parse_inventory((await client.get(url + inventory)).text)
    whole = _values_of_whole_file(realdata_dir("grib_idx_pairs") / name)
    assert len(entries) == len(whole) == 19
    wanted = [entries[i] for i in (0, 1, 2, 7, 18)]  # includes the open-ended last one
    pairs_server.reset()
    async with GfsSource(pairs_server.url, tmp_path) as source:
        messages = await source.fetch_messages(url, wanted)
    assert len(pairs_server.requests) == len(merge_ranges(wanted)) == 3
    assert any(r.range == f"bytes={wanted[-1].offset}-" for r in pairs_server.requests)
    for entry, data in zip(wanted, messages, strict=True):
        check_message_bytes(data, entry.number)
        handle = ec.codes_new_from_message(data)
        try:
            got = ec.codes_get_values(handle)
        finally:
            ec.codes_release(handle)
        np.testing.assert_array_equal(got, whole[entry.message - 1])

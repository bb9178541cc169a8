"""GfsSource.fetch_statics against the local archive on loopback (real HTTP, real GRIB2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cfgrib
import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import GfsMessageMissing, GfsSource, gfs_file_path
from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    IdxEntry,
    grib_code,
    needed_fields,
    parse_inventory,
    select_codes,
)
from gaia.tasks.defined_tasks.weather.data.gfs_statics import STATIC_CODES, era5_soil_type
from gaia.tasks.defined_tasks.weather.data.synthetic import synthetic_statics
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY

from .realdata import realdata_dir

REAL_F000 = "kerchunk__20231104_gfs.t00z.pgrb2.0p25.f000.idx"


def _source(base: str, cache: Path) -> GfsSource:
    return GfsSource(base, cache, backoff_s=0.01)


def _entries(archive: ArchiveInfo, lead: int) -> list[IdxEntry]:
    path = archive.gfs_dir / (gfs_file_path(archive.init_times[0], lead) + ".idx")
    return parse_inventory(path.read_text())


async def test_fetch_statics_gives_the_written_fields(archive, clean_archive_server, tmp_path) -> None:  # noqa: ANN001
    cycle = archive.init_times[0]
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path) as gfs:
        statics = await gfs.fetch_statics(cycle)
        inputs = await gfs.fetch_inputs(cycle)
    written = synthetic_statics(archive.grid, archive.seed)
    assert list(statics.data_vars) == ["lsm", "z", "slt"]
    assert all(statics[n].dtype == np.float32 and statics[n].dims == ("latitude", "longitude")
               for n in statics.data_vars)
    np.testing.assert_array_equal(statics["lsm"].values, written.land)
    precision = written.orography_m.max() / 2**15 * STANDARD_GRAVITY  # 16-bit packing
    np.testing.assert_allclose(statics["z"].values, written.orography_m * STANDARD_GRAVITY,
                               atol=precision)
    np.testing.assert_array_equal(statics["slt"].values, era5_soil_type(written.soil_class))
    assert set(np.unique(statics["slt"].values[written.land == 0])) == {0.0}
    assert statics["latitude"].identical(inputs["latitude"])
    assert statics["longitude"].identical(inputs["longitude"])


async def test_statics_are_three_byte_ranges_then_cached(archive, clean_archive_server, tmp_path) -> None:  # noqa: ANN001
    server = clean_archive_server
    base = archive.gfs_base_url(server.url)
    async with _source(base, tmp_path) as gfs:
        first = await gfs.fetch_statics(archive.init_times[0])
    picked = select_codes(_entries(archive, 0), STATIC_CODES, 0)
    assert sorted(r.range for r in server.requests if r.range) == sorted(
        f"bytes={e.offset}-{e.end - 1}" for e in picked.values() if e.end is not None)
    served = len(server.requests)
    async with _source(base, tmp_path) as gfs:
        second = await gfs.fetch_statics(archive.init_times[0])
    assert len(server.requests) == served
    assert first.identical(second)


async def test_a_missing_static_message_names_itself(archive, tmp_path) -> None:  # noqa: ANN001
    cycle = archive.init_times[0]
    rel = gfs_file_path(cycle, 0)
    (tmp_path / "www" / rel).parent.mkdir(parents=True)
    shutil.copy(archive.gfs_dir / rel, tmp_path / "www" / rel)
    lines = (archive.gfs_dir / (rel + ".idx")).read_text().splitlines()
    kept = [line for line in lines if ":SOTYP:surface:" not in line]
    (tmp_path / "www" / (rel + ".idx")).write_text("\n".join(kept) + "\n")
    with ArchiveServer(tmp_path / "www") as server:
        async with _source(server.url, tmp_path / "cache") as gfs:
            with pytest.raises(GfsMessageMissing, match=r"1 message\(s\) missing in .*"
                               r"f000\.idx: :SOTYP:surface:anl:"):
                await gfs.fetch_statics(cycle)
    assert not list((tmp_path / "cache").rglob("*.grib2"))


@pytest.mark.parametrize(("name", "lead", "numbers"), [
    ("reformatters__gfs.t00z.pgrb2.0p25.f000.idx", 0, ["562", "597", "682"]),
    ("kerchunk__20231104_gfs.t00z.pgrb2.0p25.f000.idx", 0, ["562", "597", "682"]),
    ("reformatters__gfs.t00z.pgrb2.0p25.f007.idx", 7, ["562", "619", "728"]),
])
def test_static_codes_pick_the_real_inventory_lines(name: str, lead: int, numbers: list[str]) -> None:
    entries = parse_inventory((realdata_dir("gfs_idx") / name).read_text())
    picked = select_codes(entries, STATIC_CODES, lead)
    assert [picked[n].number for n in ("z", "slt", "lsm")] == numbers


def _order(entries: list[IdxEntry]) -> list[str]:
    """Where the statics sit among the near-surface forecast fields."""
    marks = {(c.var, c.level) for c in STATIC_CODES.values()} | {
        ("TMP", "2 m above ground"), ("UGRD", "10 m above ground"), ("VGRD", "10 m above ground")}
    return [f"{e.var}:{e.level}" for e in entries if (e.var, e.level) in marks]


def test_f000_carries_the_statics_where_the_real_file_does(archive) -> None:  # noqa: ANN001
    real = parse_inventory((realdata_dir("gfs_idx") / REAL_F000).read_text())
    entries = _entries(archive, 0)
    assert _order(entries) == _order(real)
    needed = {(c.var, c.level) for c in map(grib_code, needed_fields())}
    picked = select_codes(entries, STATIC_CODES, 0)
    for entry in picked.values():  # each static message has a message nobody reads beside it
        i = entries.index(entry)
        beside = {(entries[i - 1].var, entries[i - 1].level), (entries[i + 1].var, entries[i + 1].level)}
        assert beside - needed - {(c.var, c.level) for c in STATIC_CODES.values()}
    assert not {(c.var, c.level) for c in STATIC_CODES.values()} & {
        (e.var, e.level) for e in _entries(archive, 6)}


def test_cfgrib_reads_the_written_statics(archive) -> None:  # noqa: ANN001
    path = archive.gfs_dir / gfs_file_path(archive.init_times[0], 0)
    surface = cfgrib.open_dataset(path, indexpath="", filter_by_keys={"typeOfLevel": "surface"})
    written = synthetic_statics(archive.grid, archive.seed)
    np.testing.assert_array_equal(surface["lsm"].values, written.land)
    np.testing.assert_array_equal(surface["slt"].values, written.soil_class)
    np.testing.assert_allclose(surface["orog"].values, written.orography_m,
                               atol=written.orography_m.max() / 2**15)


def test_an_archive_from_before_the_statics_is_not_current(archive, tmp_path) -> None:  # noqa: ANN001
    assert ArchiveInfo.load(archive.root).is_current
    data = json.loads((archive.root / "archive.json").read_text())
    del data["format_version"]
    (tmp_path / "archive.json").write_text(json.dumps(data))
    assert not ArchiveInfo.load(tmp_path).is_current

"""The local archive: weather-like skill, real formats, determinism, server, CLI."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import cfgrib
import httpx
import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo, build_archive, main
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource, gfs_file_path
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY
from tests.fixtures.xarray_references import xarray_climatology, xarray_truth

FIELDS = [("z", 500), ("t", 850)]


def _rmse(a: xr.DataArray, b: xr.DataArray) -> float:
    weights = np.cos(np.deg2rad(a["latitude"].values))[:, None]
    err = (np.asarray(a.values, dtype=np.float64) - np.asarray(b.values, dtype=np.float64)) ** 2
    return float(np.sqrt((err * weights).sum(axis=(-2, -1)) / (weights.sum() * err.shape[-1])).mean())


def _field(ds: xr.Dataset, name: str, level: int) -> xr.DataArray:
    return ds[name].sel(level=level)


@pytest.fixture(scope="module")
def sources(archive, archive_server):  # noqa: ANN001, ANN201
    """The archive's ERA5 and climatology urls, read here as whole datasets on a time dim."""
    return archive.era5_url(archive_server.url), archive.climatology_url(archive_server.url)


@pytest.mark.parametrize(("name", "level"), FIELDS)
def test_persistence_fades_and_loses_to_climatology(archive, sources, name, level) -> None:  # noqa: ANN001
    era5_url, climatology_url = sources
    inits = [archive.start + timedelta(hours=6 * i) for i in range(8)]
    t0 = _field(xarray_truth(era5_url, inits, [name], [level]).load(), name, level)
    scores = {}
    for lead in (24, 72, 240):
        valid = [t + timedelta(hours=lead) for t in inits]
        truth = _field(xarray_truth(era5_url, valid, [name], [level]).load(), name, level)
        scores[lead] = _rmse(t0, truth)
        if lead == 240:
            climatology = _field(xarray_climatology(climatology_url, valid, [name], [level]), name, level)
            clim_score = _rmse(climatology, truth)
    assert scores[24] < scores[72] < scores[240]
    assert scores[240] > 1.2 * clim_score


@pytest.mark.parametrize(("name", "level"), FIELDS)
async def test_gfs_forecast_beats_persistence_at_day_1(
    archive, archive_server, sources, tmp_path, name, level  # noqa: ANN001
) -> None:
    era5_url, _ = sources
    gfs_scores, persistence = [], []
    async with GfsSource(archive.gfs_base_url(archive_server.url), tmp_path) as gfs:
        for init in archive.cycles:
            fc = await gfs.fetch_forecast(init, [24], variables=[name], levels=[level])
            truth = xarray_truth(era5_url, [init + timedelta(hours=24)], [name], [level])
            start = xarray_truth(era5_url, [init], [name], [level])
            gfs_scores.append(_rmse(_field(fc, name, level), _field(truth.load(), name, level)))
            persistence.append(_rmse(_field(start.load(), name, level),
                                     _field(truth, name, level)))
    assert np.mean(gfs_scores) < 0.7 * np.mean(persistence)


def test_cfgrib_reads_what_was_written(archive) -> None:  # noqa: ANN001
    cycle = archive.cycles[1]
    path = archive.gfs_dir / gfs_file_path(cycle, 12)
    weather = SyntheticWeather(archive.grid, archive.start, archive.days * 4, archive.seed)
    expected = weather.forecast(weather.step_of(cycle), 12)
    levels = cfgrib.open_dataset(path, indexpath="", filter_by_keys={"typeOfLevel": "isobaricInhPa"})
    surface = cfgrib.open_dataset(path, indexpath="",
                                  filter_by_keys={"typeOfLevel": "heightAboveGround", "level": 2})
    msl = cfgrib.open_dataset(path, indexpath="", filter_by_keys={"typeOfLevel": "meanSea"})
    assert levels.attrs["GRIB_centre"] == "kwbc"
    assert int(levels["step"].values / np.timedelta64(1, "h")) == 12
    for cf_name, ours, scale in (("t", "t", 1.0), ("gh", "z", 1 / STANDARD_GRAVITY),
                                 ("u", "u", 1.0), ("q", "q", 1.0)):
        got = levels[cf_name].sel(isobaricInhPa=500).values
        want = expected[ours][7] * scale
        precision = (want.max() - want.min()) / 2**15  # 16-bit simple packing
        np.testing.assert_allclose(got, want, atol=precision)
    np.testing.assert_allclose(surface["t2m"].values, expected["2t"], atol=0.01)
    np.testing.assert_allclose(msl["prmsl"].values, expected["msl"], atol=1.0)


def test_build_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    start = datetime(2025, 3, 1, tzinfo=UTC)
    kwargs = {"grid_deg": 10.0, "start": start, "days": 2, "cycle_days": 0.5}
    one = build_archive(tmp_path / "a", seed=5, **kwargs)  # type: ignore[arg-type]
    two = build_archive(tmp_path / "b", seed=5, **kwargs)  # type: ignore[arg-type]
    grib = f"{one.gfs_prefix}/{gfs_file_path(one.cycles[1], 6)}"
    for rel in (grib, grib + ".idx",
                "era5.zarr/temperature/3.0.0.0", "climatology.zarr/geopotential/0.0.0.0.0"):
        assert (one.root / rel).read_bytes() == (two.root / rel).read_bytes(), rel
    assert ArchiveInfo.load(one.root) == one
    assert one.init_times == (start + timedelta(hours=6),)


def test_build_refuses_truth_too_short(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="do not reach"):
        build_archive(tmp_path, grid_deg=10.0, start=datetime(2025, 3, 1, tzinfo=UTC), days=1,
                      cycle_days=1, forecast_hours=(24,))


def test_server_honours_range_head_and_refuses_traversal(archive, clean_archive_server) -> None:  # noqa: ANN001
    rel = f"{archive.gfs_prefix}/{gfs_file_path(archive.cycles[0], 0)}"
    size = (archive.root / rel).stat().st_size
    url = f"{clean_archive_server.url}/{rel}"
    with httpx.Client() as client:
        head = client.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == size
        part = client.get(url, headers={"Range": "bytes=0-3"})
        assert part.status_code == 206 and part.content == b"GRIB"
        assert part.headers["content-range"] == f"bytes 0-3/{size}"
        assert client.get(url, headers={"Range": f"bytes={size}-"}).status_code == 416
        assert client.get(f"{clean_archive_server.url}/../../etc/passwd").status_code == 404
        assert client.get(f"{clean_archive_server.url}/%2e%2e/archive.json").status_code == 404
    assert clean_archive_server.bytes_sent == 4


def test_server_latency_switch(archive, clean_archive_server) -> None:  # noqa: ANN001
    clean_archive_server.latency_s = 0.2
    with httpx.Client() as client, pytest.raises(httpx.ReadTimeout):
        client.get(f"{clean_archive_server.url}/archive.json", timeout=0.05)


def test_cli_build_and_serve(tmp_path: Path) -> None:
    root = tmp_path / "arch"
    assert main(["build", str(root), "--grid", "10", "--start", "2025-03-01", "--days", "2",
                 "--cycle-days", "0.5", "--forecast-hours", "6"]) == 0
    info = ArchiveInfo.load(root)
    assert info.forecast_hours == (6,) and len(info.cycles) == 2
    proc = subprocess.Popen(
        [sys.executable, "-m", "gaia.tasks.defined_tasks.weather.data.archive", "serve",
         str(root), "--port", "0"], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        url = first.strip().rsplit(" ", 1)[-1]
        assert first.startswith("serving") and url.startswith("http://127.0.0.1:")
        response = httpx.get(f"{url}/{info.gfs_prefix}/{gfs_file_path(info.cycles[0], 6)}.idx")
        assert response.status_code == 200 and ":PRMSL:mean sea level:6 hour fcst:" in response.text
    finally:
        proc.terminate()
        proc.wait(timeout=10)

"""ERA5 truth and climatology read over HTTP from zarr stores in the real layouts.

Values are checked against the synthetic weather the archive was built from and against
the xarray oracle (``tests.fixtures.xarray_references``): identical values required."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource
from gaia.tasks.defined_tasks.weather.data.era5 import LEXICON, Era5NotAvailable, Era5Source
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PRESSURE_LEVELS_HPA,
    field_keys,
    is_level_variable,
)
from tests.fixtures.wb2_store import wb2_value
from tests.fixtures.xarray_references import open_zarr_url, xarray_climatology, xarray_truth


def _chunk_reads(server: ArchiveServer) -> list[str]:
    return [r.path for r in server.requests
            if re.fullmatch(r"\d+(\.\d+)+", r.path.rsplit("/", 1)[-1])]


def _weather(archive) -> SyntheticWeather:  # noqa: ANN001
    return SyntheticWeather(archive.grid, archive.start, archive.days * 4, archive.seed)


def test_era5_reads_the_chunks_of_the_valid_times_and_levels_asked(archive, clean_archive_server) -> None:  # noqa: ANN001
    era5 = Era5Source(archive.era5_url(clean_archive_server.url))
    keys = [("t", 850), ("t", 500), ("2t", None)]
    weather = _weather(archive)
    for step in (5, 16):
        clean_archive_server.reset()
        fields = era5.read_fields(archive.start + timedelta(hours=6 * step), keys)
        assert sorted(_chunk_reads(clean_archive_server)) == [
            f"/era5.zarr/2m_temperature/{step}.0.0", f"/era5.zarr/temperature/{step}.0.0.0"]
        truth = weather.truth(step)
        np.testing.assert_allclose(fields[("t", 850)], truth["t"][10], rtol=1e-6)
        np.testing.assert_allclose(fields[("t", 500)], truth["t"][7], rtol=1e-6)
        np.testing.assert_allclose(fields[("2t", None)], truth["2t"], rtol=1e-6)


def test_era5_reads_all_variables_on_the_stored_grid(archive, archive_server) -> None:  # noqa: ANN001
    fields = Era5Source(archive.era5_url(archive_server.url)).read_fields(
        archive.start, field_keys())
    assert set(fields) == set(field_keys())
    assert {level for _, level in fields if level is not None} == set(PRESSURE_LEVELS_HPA)
    assert {variable for variable, _ in fields} == set(ALL_VARIABLES)
    assert fields.grid.latitudes[0] == 90.0  # descending, as stored
    assert fields[("z", 500)].shape == fields.grid.shape


def test_available_until_is_honoured(archive, archive_server) -> None:  # noqa: ANN001
    era5 = Era5Source(archive.era5_url(archive_server.url))
    assert era5.available_until() == archive.truth_until
    assert len(era5.times) > archive.days * 4  # padded axis, like ARCO
    era5.read_fields(archive.truth_until, [("2t", None)])
    with pytest.raises(Era5NotAvailable, match="not for .*T00:00:00"):
        era5.read_fields(archive.truth_until + timedelta(hours=6), [("2t", None)])
    with pytest.raises(Era5NotAvailable):
        era5.read_fields(archive.start - timedelta(hours=6), [("2t", None)])


def test_climatology_matches_day_of_year_and_hour(archive, archive_server) -> None:  # noqa: ANN001
    clim = ClimatologySource(archive.climatology_url(archive_server.url))
    weather = _weather(archive)
    for when in (archive.start + timedelta(hours=h) for h in (0, 18, 54)):
        fields = clim.read_fields(when, [("z", 500), ("2t", None)])
        mean = weather.mean(when.timetuple().tm_yday, when.hour)
        np.testing.assert_allclose(fields[("2t", None)], mean["2t"], rtol=1e-6)
        np.testing.assert_allclose(fields[("z", 500)], mean["z"][7], rtol=1e-6)
    with pytest.raises(KeyError, match="no \\(hour, dayofyear\\)"):
        clim.read_fields(archive.start + timedelta(hours=3), [("2t", None)])


def test_climatology_reads_what_the_pointwise_selection_gives_and_only_what_is_asked(
    archive, clean_archive_server,  # noqa: ANN001
) -> None:
    url = archive.climatology_url(clean_archive_server.url)
    clim = ClimatologySource(url)
    times = [archive.start + timedelta(hours=h) for h in (6, 30, 102)]
    keys = [("t", 850), ("t", 250), ("msl", None)]
    fields = [clim.read_fields(when, keys) for when in times]
    read = {path.split("/")[-2] for path in _chunk_reads(clean_archive_server)}
    assert read == {"temperature", "mean_sea_level_pressure"}
    # the selection as it once was: two index arrays on one time dimension (pointwise)
    index = pd.DatetimeIndex([t.replace(tzinfo=None) for t in times])
    pointwise = open_zarr_url(url).sel(
        hour=xr.DataArray(np.asarray(index.hour), dims="time"),
        dayofyear=xr.DataArray(np.asarray(index.day_of_year), dims="time"),
    )
    for i, got in enumerate(fields):
        for level in (850, 250):
            np.testing.assert_array_equal(
                got[("t", level)], pointwise["temperature"].sel(level=level).values[i])
        np.testing.assert_array_equal(
            got[("msl", None)], pointwise["mean_sea_level_pressure"].values[i])


@pytest.fixture(scope="module")
def leap_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A tiny full-year climatology whose value encodes (dayofyear, hour)."""
    root = tmp_path_factory.mktemp("leap")
    hours, doys = np.array([0, 6, 12, 18]), np.arange(1, 367)
    code = (doys[None, :] * 100 + hours[:, None]).astype(np.float32)
    values = np.broadcast_to(code[:, :, None, None], (4, 366, 3, 4)).copy()
    ds = xr.Dataset(
        {"2m_temperature": (("hour", "dayofyear", "latitude", "longitude"), values)},
        coords={"hour": hours, "dayofyear": doys, "latitude": np.float32([60, 0, -60]),
                "longitude": np.float32([0, 90, 180, 270])},
    )
    ds.to_zarr(root / "clim.zarr", zarr_format=2, consolidated=True)
    with ArchiveServer(root) as server:
        yield f"{server.url}/clim.zarr"


@pytest.mark.parametrize(("when", "code"), [
    (datetime(2024, 2, 29, 6, tzinfo=UTC), 6006),  # leap day = day 60 of 2024
    (datetime(2024, 3, 1, 0, tzinfo=UTC), 6100),
    (datetime(2025, 3, 1, 12, tzinfo=UTC), 6012),  # no leap day: 1 March is day 60
    (datetime(2024, 12, 31, 18, tzinfo=UTC), 36618),
    (datetime(2025, 12, 31, 18, tzinfo=UTC), 36518),
])
def test_leap_days(leap_store: str, when: datetime, code: int) -> None:
    fields = ClimatologySource(leap_store).read_fields(when, [("2t", None)])
    assert float(fields[("2t", None)][0, 0]) == code


def test_zarr_reads_retry_5xx(archive, clean_archive_server) -> None:  # noqa: ANN001
    era5 = Era5Source(archive.era5_url(clean_archive_server.url))
    (chunk,) = era5.chunks(archive.start, [("msl", None)])
    assert era5.grid.shape  # coordinates read now: only the chunk is read below
    clean_archive_server.reset()
    clean_archive_server.fail_next(2, status=500)
    values = era5.read_chunk(chunk)[archive.start][("msl", None)]
    assert np.isfinite(values).all()
    assert [r.status for r in clean_archive_server.requests] == [500, 500, 200]


# -- field-level reads: LeadFields, each chunk read once ---------------------------------
def test_era5_read_fields_equals_the_xarray_oracle_and_reads_each_chunk_once(
    archive, clean_archive_server,  # noqa: ANN001
) -> None:
    era5 = Era5Source(archive.era5_url(clean_archive_server.url))
    when = archive.start + timedelta(hours=54)
    keys = field_keys()
    fields = era5.read_fields(when, keys)
    chunks = _chunk_reads(clean_archive_server)
    # one chunk per variable: each holds all levels of one variable at one time
    assert sorted(chunks) == sorted(
        f"/era5.zarr/{LEXICON[name][0]}/9.0.0" + (".0" if is_level_variable(name) else "")
        for name in ALL_VARIABLES)
    oracle = xarray_truth(archive.era5_url(clean_archive_server.url), [when])
    expected = LeadFields.from_dataset(oracle.load().isel(time=0), keys)
    assert set(fields) == set(keys) and fields.grid == expected.grid
    for key in keys:
        np.testing.assert_array_equal(fields[key], expected[key])
        assert fields[key].dtype == np.float32


def test_era5_read_fields_keeps_the_availability_and_key_errors(archive, archive_server) -> None:  # noqa: ANN001
    era5 = Era5Source(archive.era5_url(archive_server.url))
    with pytest.raises(Era5NotAvailable, match="not for"):
        era5.read_fields(archive.truth_until + timedelta(hours=6), [("2t", None)])
    with pytest.raises(KeyError, match="unknown variables"):
        era5.read_fields(archive.start, [("tp", None)])
    with pytest.raises(KeyError, match=r"no levels \[975\] hPa"):
        era5.read_fields(archive.start, [("t", 975)])
    with pytest.raises(KeyError, match="not a pressure-level variable"):
        era5.read_fields(archive.start, [("t", None)])
    with pytest.raises(KeyError, match="time axis"):
        era5.read_fields(archive.start + timedelta(hours=3), [("2t", None)])


def test_climatology_read_fields_equals_the_xarray_oracle_and_reads_only_what_is_asked(
    archive, clean_archive_server,  # noqa: ANN001
) -> None:
    url = archive.climatology_url(clean_archive_server.url)
    clim = ClimatologySource(url)
    keys = [("2t", None), ("t", 850), ("z", 500), ("t", 250)]  # day-1-like: a few fields
    for hours in (6, 102):
        when = archive.start + timedelta(hours=hours)
        clean_archive_server.reset()
        fields = clim.read_fields(when, keys)
        # this archive chunks all 13 levels together: one read per variable's chunk
        assert sorted(p.split("/")[-2] for p in _chunk_reads(clean_archive_server)) == [
            "2m_temperature", "geopotential", "temperature"]
        expected = LeadFields.from_dataset(xarray_climatology(url, [when]).isel(time=0), keys)
        for key in keys:
            np.testing.assert_array_equal(fields[key], expected[key])


def test_climatology_in_the_wb2_layout_reads_one_chunk_per_field(wb2_climatology) -> None:  # noqa: ANN001
    server = wb2_climatology.server
    clim = ClimatologySource(wb2_climatology.url)
    when = datetime(2025, 2, 3, 12, tzinfo=UTC)  # day 34: chunk 11 (days 34..36), hours 0-12
    keys = [("2t", None), ("t", 500), ("t", 850)]
    server.reset()
    fields = clim.read_fields(when, keys)
    assert sorted(_chunk_reads(server)) == [
        "/clim.zarr/2m_temperature/0.11.0.0", "/clim.zarr/temperature/0.11.1.0.0",
        "/clim.zarr/temperature/0.11.2.0.0"]
    for variable, level in keys:
        assert float(fields[(variable, level)][1, 2]) == wb2_value(variable, level, 12, 34)
    today = xarray_climatology(wb2_climatology.url, [when], variables=["2t", "t"],
                               levels=[500, 850]).isel(time=0)
    expected = LeadFields.from_dataset(today, keys)
    for key in keys:
        np.testing.assert_array_equal(fields[key], expected[key])


def test_a_wb2_chunk_gives_every_hour_and_day_it_holds(wb2_climatology) -> None:  # noqa: ANN001
    clim = ClimatologySource(wb2_climatology.url)
    (chunk,) = clim.chunks(datetime(2024, 12, 31, 18, tzinfo=UTC), [("t", 250)])
    assert chunk.entries == ((18, 364), (18, 365), (18, 366))  # hour 18 alone, days 364..366
    wb2_climatology.server.reset()
    blocks = clim.read_chunk(chunk)
    assert len(_chunk_reads(wb2_climatology.server)) == 1
    for (hour, day), fields in blocks.items():
        assert float(fields[("t", 250)][0, 0]) == wb2_value("t", 250, hour, day)

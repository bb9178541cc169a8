"""GfsSource against the local archive served on loopback (real HTTP, real GRIB2)."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.gfs import (
    GfsMessageMissing,
    GfsSource,
    GfsTransportError,
    GfsUnavailable,
    gfs_file_path,
)
from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    merge_ranges,
    needed_fields,
    parse_inventory,
    select_messages,
)
from gaia.tasks.defined_tasks.weather.data.grid import Grid, check_forecast_grid
from gaia.tasks.defined_tasks.weather.data.synthetic import SyntheticWeather
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES, PRESSURE_LEVELS_HPA


def _source(base: str, cache: Path, **kwargs: object) -> GfsSource:
    return GfsSource(base, cache, backoff_s=0.01, **kwargs)  # type: ignore[arg-type]


def _idx_entries(archive: ArchiveInfo, lead: int = 0):  # noqa: ANN202
    cycle = archive.init_times[0]
    path = archive.gfs_dir / (gfs_file_path(cycle, lead) + ".idx")
    return parse_inventory(path.read_text())


async def test_inventory_is_parsed_into_messages(archive, clean_archive_server) -> None:  # noqa: ANN001
    async with _source(archive.gfs_base_url(clean_archive_server.url), Path("unused")) as gfs:
        entries = await gfs.inventory(archive.init_times[0], 6)
    assert len(entries) == 1 + 13 * 6 + 4
    assert (entries[0].var, entries[0].level, entries[0].ftime) == ("PRMSL", "mean sea level",
                                                                    "6 hour fcst")
    assert entries[-1].end is None


async def test_fetch_inputs_is_canonical_and_close_to_truth(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    init = archive.init_times[0]
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path) as gfs:
        ds = await gfs.fetch_inputs(init)
    assert set(ds.data_vars) == set(ALL_VARIABLES)
    assert list(ds["level"].values) == list(PRESSURE_LEVELS_HPA)
    assert ds["t"].dims == ("time", "level", "latitude", "longitude")
    assert ds["2t"].dims == ("time", "latitude", "longitude")
    assert [str(t) for t in ds["time"].values.astype("datetime64[h]")] == [
        (init - timedelta(hours=6)).strftime("%Y-%m-%dT%H"), init.strftime("%Y-%m-%dT%H")]
    check_forecast_grid(Grid.from_dataset(ds), archive.grid)
    weather = SyntheticWeather(archive.grid, archive.start, archive.days * 4, archive.seed)
    truth = weather.truth(weather.step_of(init))
    z500 = ds["z"].sel(level=500).values[1]
    assert np.sqrt(np.mean((z500 - truth["z"][7]) ** 2)) < 150.0  # analysis error, m2 s-2


async def test_fetch_downloads_only_the_requested_bytes(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    server = clean_archive_server
    async with _source(archive.gfs_base_url(server.url), tmp_path) as gfs:
        await gfs.fetch_analysis([archive.init_times[0]], variables=["t"], levels=[500])
    entries = _idx_entries(archive)
    message = select_messages(entries, [("t", 500)], 0)[("t", 500)]
    assert message.end is not None
    idx_size = (archive.gfs_dir / (gfs_file_path(archive.init_times[0], 0) + ".idx")).stat().st_size
    assert server.bytes_sent == idx_size + (message.end - message.offset)
    assert [r.range for r in server.requests if r.range] == [
        f"bytes={message.offset}-{message.end - 1}"]


async def test_adjacent_messages_are_merged_into_one_request(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    server = clean_archive_server
    async with _source(archive.gfs_base_url(server.url), tmp_path) as gfs:
        await gfs.fetch_analysis([archive.init_times[0]])
    picked = select_messages(_idx_entries(archive), needed_fields(), 0)
    ranges = merge_ranges(picked.values())
    range_requests = [r for r in server.requests if r.range]
    assert len(range_requests) == len(ranges) < 69
    needed = sum((r.end or 0) - r.start for r in ranges if r.end is not None)
    grib = archive.gfs_dir / gfs_file_path(archive.init_times[0], 0)
    needed += grib.stat().st_size - ranges[-1].start if ranges[-1].end is None else 0
    idx_size = grib.with_name(grib.name + ".idx").stat().st_size
    assert server.bytes_sent == idx_size + needed < idx_size + grib.stat().st_size


async def test_5xx_then_success(archive, clean_archive_server, tmp_path) -> None:  # noqa: ANN001
    server = clean_archive_server
    server.fail_next(2, status=503)
    async with _source(archive.gfs_base_url(server.url), tmp_path) as gfs:
        ds = await gfs.fetch_analysis([archive.init_times[0]], variables=["msl"])
    assert [r.status for r in server.requests][:3] == [503, 503, 200]
    assert np.isfinite(ds["msl"].values).all()


async def test_5xx_forever_is_a_transport_error(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    clean_archive_server.fail_next(100, status=502)
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path,
                       max_retries=2) as gfs:
        with pytest.raises(GfsTransportError, match="HTTP 502"):
            await gfs.fetch_analysis([archive.init_times[0]], variables=["msl"])
    assert len(clean_archive_server.requests) == 3


async def test_truncated_message_is_an_error_not_data(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    server = clean_archive_server
    async with _source(archive.gfs_base_url(server.url), tmp_path, max_retries=2) as gfs:
        await gfs.inventory(archive.init_times[0], 0)  # idx read before the fault
        server.truncate_next(100)
        with pytest.raises(GfsTransportError, match="truncated body after 3 tries"):
            await gfs.fetch_analysis([archive.init_times[0]], variables=["t"], levels=[500])
    assert not list(tmp_path.rglob("*.grib2"))  # nothing cached


async def test_one_truncated_response_is_retried(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    server = clean_archive_server
    async with _source(archive.gfs_base_url(server.url), tmp_path) as gfs:
        entries = await gfs.inventory(archive.init_times[0], 0)
        server.truncate_next(1)
        ds = await gfs.fetch_analysis([archive.init_times[0]], variables=["t"], levels=[500])
    assert np.isfinite(ds["t"].values).all() and len(entries) == 89  # f000: statics too


async def test_missing_message_names_itself(archive, tmp_path) -> None:  # noqa: ANN001
    cycle = archive.init_times[0]
    rel = gfs_file_path(cycle, 0)
    (tmp_path / "www" / rel).parent.mkdir(parents=True)
    shutil.copy(archive.gfs_dir / rel, tmp_path / "www" / rel)
    lines = (archive.gfs_dir / (rel + ".idx")).read_text().splitlines()
    kept = [line for line in lines if ":SPFH:850 mb:" not in line]
    (tmp_path / "www" / (rel + ".idx")).write_text("\n".join(kept) + "\n")
    with ArchiveServer(tmp_path / "www") as server:
        async with _source(server.url, tmp_path / "cache") as gfs:
            with pytest.raises(GfsMessageMissing, match=r"1 message\(s\) missing in .*"
                               r"f000\.idx: :SPFH:850 mb:anl:"):
                await gfs.fetch_analysis([cycle])


async def test_cache_serves_a_second_fetch_without_requests(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    server = clean_archive_server
    base = archive.gfs_base_url(server.url)
    async with _source(base, tmp_path) as gfs:
        first = await gfs.fetch_forecast(archive.init_times[0], [6, 12])
    served = len(server.requests)
    assert served > 0
    async with _source(base, tmp_path) as gfs:
        second = await gfs.fetch_forecast(archive.init_times[0], [6, 12])
    assert len(server.requests) == served
    assert first.identical(second)


async def test_forecast_has_valid_times_and_lead_coordinate(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    init = archive.init_times[0]
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path) as gfs:
        ds = await gfs.fetch_forecast(init, [6, 24], variables=["z"], levels=[500])
    assert list(ds["lead_hours"].values) == [6, 24]
    assert ds["time"].values[1] - ds["time"].values[0] == np.timedelta64(18, "h")
    assert ds.attrs["init_time"] == init.isoformat()


async def test_unpublished_cycle(archive, clean_archive_server, tmp_path) -> None:  # noqa: ANN001
    late = archive.cycles[-1] + timedelta(hours=6)
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path) as gfs:
        assert await gfs.is_cycle_complete(archive.cycles[-1])
        assert not await gfs.is_cycle_complete(late)
        with pytest.raises(GfsUnavailable, match="is not published"):
            await gfs.fetch_analysis([late])


async def test_fallback_base_url_is_used(archive, clean_archive_server, tmp_path) -> None:  # noqa: ANN001
    base = archive.gfs_base_url(clean_archive_server.url)
    async with _source(clean_archive_server.url + "/nowhere", tmp_path,
                       fallback_base_url=base) as gfs:
        assert await gfs.is_cycle_complete(archive.init_times[0])
        ds = await gfs.fetch_analysis([archive.init_times[0]], variables=["2t"])
    assert np.isfinite(ds["2t"].values).all()


async def test_naive_or_off_cycle_times_are_refused(tmp_path) -> None:  # noqa: ANN001
    from datetime import UTC, datetime

    async with _source("http://127.0.0.1:9", tmp_path) as gfs:
        with pytest.raises(ValueError, match="timezone-aware"):
            await gfs.fetch_inputs(datetime(2025, 1, 1))
        with pytest.raises(ValueError, match="not a 6-hourly GFS cycle"):
            await gfs.fetch_inputs(datetime(2025, 1, 1, 3, tzinfo=UTC))


async def test_timeouts_are_retried_then_reported(
    archive, clean_archive_server, tmp_path  # noqa: ANN001
) -> None:
    clean_archive_server.latency_s = 0.5
    async with _source(archive.gfs_base_url(clean_archive_server.url), tmp_path,
                       timeout_s=0.05, max_retries=1) as gfs:
        with pytest.raises(GfsTransportError, match="ReadTimeout"):
            await gfs.fetch_analysis([archive.init_times[0]], variables=["msl"])

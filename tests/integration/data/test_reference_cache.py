"""The host's reference cache over loopback zarr stores in the real layouts.

Truth comes from the archive's ERA5 store (one chunk per variable and time, all levels, as
ARCO), climatology from a WeatherBench-2-layout store (3 hours x 3 days x one field), the
GFS day-1 reference from the archive's GRIB2. The server counts every GET, so "fetched
once" is counted, not assumed.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from gaia.clock import VirtualClock
from gaia.tasks.defined_tasks.weather.data.archive_server import ArchiveServer
from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource
from gaia.tasks.defined_tasks.weather.data.era5 import Era5NotAvailable, Era5Source
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.pipeline.reference_cache import ReferenceCache
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES, field_keys
from tests.fixtures.reference_cache_tasks import die_while_writing, digest, read_lead
from tests.fixtures.wb2_store import wb2_value

CLIM_KEYS = [("2t", None), ("t", 250), ("t", 500), ("t", 850)]
HOUR = 3600.0


def _chunks(server: ArchiveServer) -> list[str]:
    return [r.path for r in server.requests
            if re.fullmatch(r"\d+(\.\d+)+", r.path.rsplit("/", 1)[-1])]


def _cache(root: Path, archive, archive_server, wb2, *, max_bytes: int = 1 << 30,  # noqa: ANN001
           idle_s: float = 86_400.0, clock=None) -> ReferenceCache:  # noqa: ANN001
    return ReferenceCache(
        root, era5=Era5Source(archive.era5_url(archive_server.url)),
        climatology=ClimatologySource(wb2.url), max_bytes=max_bytes, idle_s=idle_s,
        **({"clock": clock} if clock else {}),
    )


@pytest.fixture
def servers(clean_archive_server, wb2_climatology):  # noqa: ANN001, ANN201
    wb2_climatology.server.reset()
    return clean_archive_server, wb2_climatology.server


def test_two_threads_asking_for_one_lead_fetch_each_chunk_once(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    era5_server, wb2_server = servers
    when = archive.start + timedelta(hours=48)
    keys = field_keys()
    caches = [_cache(tmp_path, archive, era5_server, wb2_climatology) for _ in range(2)]
    barrier, results = threading.Barrier(2), {}

    def task(index: int) -> None:
        barrier.wait()
        cache = caches[index]
        results[index] = (cache.truth(when, keys), cache.climatology(when, CLIM_KEYS))

    threads = [threading.Thread(target=task, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    era5_chunks, wb2_chunks = _chunks(era5_server), _chunks(wb2_server)
    assert len(era5_chunks) == len(set(era5_chunks)) == len(ALL_VARIABLES)
    assert len(wb2_chunks) == len(set(wb2_chunks)) == len(CLIM_KEYS)
    (truth_a, clim_a), (truth_b, clim_b) = results[0], results[1]
    assert digest(truth_a) == digest(truth_b) and digest(clim_a) == digest(clim_b)
    expected = Era5Source(archive.era5_url(era5_server.url)).read_fields(when, keys)
    assert digest(truth_a) == digest(expected)
    assert float(clim_a[("t", 500)][0, 0]) == wb2_value("t", 500, 0, 3)
    assert isinstance(truth_a[("z", 500)], np.memmap)  # shared page cache, no copies


def test_two_processes_asking_for_one_lead_fetch_each_chunk_once(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    era5_server, wb2_server = servers
    when = archive.start + timedelta(hours=72)
    args = (tmp_path, archive.era5_url(era5_server.url), wb2_climatology.url, when,
            field_keys(), CLIM_KEYS)
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        answers = [pool.apply_async(read_lead, args) for _ in range(2)]
        digests = [answer.get(timeout=120) for answer in answers]
    era5_chunks = _chunks(era5_server)
    assert len(era5_chunks) == len(set(era5_chunks)) == len(ALL_VARIABLES)
    wb2_chunks = _chunks(wb2_server)
    assert len(wb2_chunks) == len(set(wb2_chunks)) == len(CLIM_KEYS)
    assert digests[0] == digests[1]


def test_climatology_keeps_the_whole_chunk_so_later_leads_fetch_nothing(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    _, wb2_server = servers
    cache = _cache(tmp_path, archive, servers[0], wb2_climatology)
    first = datetime(2025, 2, 3, 0, tzinfo=UTC)  # day 34, the first of chunk (34..36)
    cache.climatology(first, CLIM_KEYS)
    assert len(_chunks(wb2_server)) == len(CLIM_KEYS)
    wb2_server.reset()
    for later in (first + timedelta(days=1, hours=6), first + timedelta(days=2, hours=12)):
        fields = cache.climatology(later, CLIM_KEYS)
        assert float(fields[("2t", None)][2, 3]) == wb2_value(
            "2t", None, later.hour, later.timetuple().tm_yday)
    assert _chunks(wb2_server) == []


def test_the_disk_bound_evicts_the_least_recently_used_entry(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    era5_server, _ = servers
    clock = VirtualClock(datetime(2025, 3, 1, tzinfo=UTC))
    keys = field_keys()
    one_entry = len(keys) * (archive.grid.shape[0] * archive.grid.shape[1] * 4 + 128)
    cache = _cache(tmp_path, archive, era5_server, wb2_climatology,
                   max_bytes=int(2.5 * one_entry), clock=clock)
    a, b, c = (archive.start + timedelta(hours=h) for h in (24, 30, 36))
    for when in (a, b, a):  # b is now the least recently used
        cache.truth(when, keys)
        clock.advance(timedelta(minutes=1))
    cache.truth(c, keys)
    entries = sorted(p.name for p in (tmp_path / cache._truth.name).iterdir() if p.is_dir())
    assert entries == [f"{a:%Y%m%dT%H%M}", f"{c:%Y%m%dT%H%M}"]
    era5_server.reset()
    cache.truth(a, keys)
    assert _chunks(era5_server) == []  # kept
    cache.truth(b, keys)
    assert len(_chunks(era5_server)) == len(ALL_VARIABLES)  # evicted, fetched again


def test_entries_idle_longer_than_idle_s_by_the_injected_clock_are_pruned(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    clock = VirtualClock(datetime(2025, 3, 1, tzinfo=UTC))
    cache = _cache(tmp_path, archive, servers[0], wb2_climatology, idle_s=30 * HOUR, clock=clock)
    old, fresh = (archive.start + timedelta(hours=h) for h in (24, 48))
    cache.truth(old, [("2t", None)])
    cache.climatology(old, [("2t", None)])
    clock.advance(timedelta(hours=20))
    cache.truth(fresh, [("2t", None)])
    assert cache.prune().idle == ()
    clock.advance(timedelta(hours=11))  # old: 31 h idle; fresh: 11 h
    report = cache.prune()
    clim_entries = {f"{cache._normals.name}/h00-d{d:03d}" for d in (1, 2, 3)}
    clim_entries |= {f"{cache._normals.name}/h{h:02d}-d{d:03d}" for h in (6, 12) for d in (1, 2, 3)}
    assert set(report.idle) == {f"{cache._truth.name}/{old:%Y%m%dT%H%M}"} | clim_entries
    assert report.kept_bytes > 0
    assert (tmp_path / cache._truth.name / f"{fresh:%Y%m%dT%H%M}" / "2t.npy").is_file()


def test_a_filler_killed_mid_write_leaves_nothing_complete_and_the_next_call_fetches(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    era5_server, _ = servers
    when = archive.start + timedelta(hours=96)
    keys = [("2t", None), ("msl", None)]
    child = multiprocessing.get_context("spawn").Process(
        target=die_while_writing,
        args=(tmp_path, archive.era5_url(era5_server.url), wb2_climatology.url, when, keys))
    child.start()
    child.join(timeout=120)
    assert child.exitcode == 9
    entry = tmp_path / _cache(tmp_path, archive, era5_server, wb2_climatology)._truth.name
    entry = entry / f"{when:%Y%m%dT%H%M}"
    assert not list(entry.glob("*.npy")) and list(entry.glob("*.partial"))
    era5_server.reset()
    fields = _cache(tmp_path, archive, era5_server, wb2_climatology).truth(when, keys)
    assert len(_chunks(era5_server)) == 2
    expected = Era5Source(archive.era5_url(era5_server.url)).read_fields(when, keys)
    assert digest(fields) == digest(expected)


def test_source_errors_come_through_and_leave_no_entry_that_reads_complete(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    cache = _cache(tmp_path, archive, servers[0], wb2_climatology)
    with pytest.raises(Era5NotAvailable):
        cache.truth(archive.truth_until + timedelta(hours=6), [("2t", None)])
    with pytest.raises(KeyError, match="store has no variables"):
        cache.climatology(archive.start, [("z", 500)])  # this store has only 2t and t
    with pytest.raises(KeyError, match="unknown variables"):
        cache.truth(archive.start, [("tp", None)])
    assert not list(tmp_path.rglob("*.npy"))


async def test_the_gfs_day1_reference_is_decoded_once_for_two_calls(
    tmp_path, archive, servers, wb2_climatology,  # noqa: ANN001
) -> None:
    era5_server, _ = servers
    cache = _cache(tmp_path / "refs", archive, era5_server, wb2_climatology)
    init, leads = archive.init_times[0], (6, 12, 24)
    keys = [("2t", None), ("z", 500), ("t", 850)]
    base = archive.gfs_base_url(era5_server.url)
    answers = []
    for task in range(2):  # each with its own GRIB message cache: a second decode would fetch
        async with GfsSource(base, tmp_path / f"grib{task}") as gfs:
            answers.append(await cache.gfs_forecast(gfs, init, leads, keys))
        if task == 0:
            first = [r for r in era5_server.requests if ".pgrb2." in r.path]
            assert first
            era5_server.reset()
    assert [r for r in era5_server.requests if ".pgrb2." in r.path] == []
    assert all(digest(answers[0][lead]) == digest(answers[1][lead]) for lead in leads)
    async with GfsSource(base, tmp_path / "direct") as gfs:
        direct = await gfs.fetch_forecast(init, [12], variables=["t"], levels=[850])
    np.testing.assert_array_equal(answers[1][12][("t", 850)],
                                  direct["t"].sel(level=850).values[0])

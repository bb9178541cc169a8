"""The GFS fetch stage is bounded like inference (issue 13 item 9): with one fetch slot, a
second job waits for the first job's fetch, on the real pipeline and a real SQLite file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import xarray as xr

from gaia.miner.database import JobRecord, MinerDatabase, database_url_for
from gaia.miner.pipeline import ForecastJobContext, run_job
from tests.integration.miner.test_miner_database import NOW, T0, new_job


class GatedSource:
    """An input source whose fetches wait for ``release`` and count how many overlap."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most = 0
        self.release = asyncio.Event()

    async def fetch_inputs(self, init_time: datetime) -> xr.Dataset:
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        try:
            await self.release.wait()
            raise ConnectionError("GFS is not reachable in this test")
        finally:
            self.in_flight -= 1


async def all_attempts_begun(db: MinerDatabase, jobs: list[JobRecord],
                             timeout_s: float = 60.0) -> None:
    """Wait (on a loaded machine, as long as it takes) until every job began its attempt."""
    async with asyncio.timeout(timeout_s):
        while True:
            rows = [await db.get_job(job.job_id) for job in jobs]
            if all(row is not None and row.attempts == 1 for row in rows):
                return
            await asyncio.sleep(0.01)


async def test_one_fetch_slot_runs_one_fetch_at_a_time(tmp_path: Path) -> None:
    db = MinerDatabase(database_url_for(None, tmp_path))
    await db.create_tables()
    source = GatedSource()

    @asynccontextmanager
    async def open_source() -> AsyncIterator[GatedSource]:
        yield source

    with ThreadPoolExecutor(max_workers=2) as executor:
        ctx = ForecastJobContext(
            db=db, open_source=open_source, model=None,  # type: ignore[arg-type]
            store_root=tmp_path / "forecasts", signer=None, executor=executor,
            fetch_slots=asyncio.Semaphore(1), inference_slots=asyncio.Semaphore(1),
            clock=lambda: NOW.astimezone(UTC),
        )
        jobs: list[JobRecord] = []
        for init in (T0, T0 + timedelta(hours=6), T0 + timedelta(hours=12)):
            jobs.append((await db.get_or_create_job(new_job(init)))[0])
        runs = [asyncio.create_task(run_job(job, ctx)) for job in jobs]
        await all_attempts_begun(db, jobs)  # each then goes straight for the fetch slot
        await asyncio.sleep(0.1)
        assert source.in_flight == 1
        source.release.set()
        results = await asyncio.gather(*runs, return_exceptions=True)
    await db.close()
    assert all(isinstance(r, ConnectionError) for r in results)
    assert source.most == 1

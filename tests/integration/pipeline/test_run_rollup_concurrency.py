"""Two steps of one run, each storing scores then rolling the run up, must not deadlock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunMode, RunStatus
from gaia.validator.database import validator_database_manager as db

INIT = datetime(2026, 11, 27, 12, tzinfo=UTC)


async def test_concurrent_score_writes_and_roll_ups_of_one_run(
    session_factory: async_sessionmaker,
) -> None:
    async with session_factory.begin() as session:
        run_id, _ = await db.create_run(session, INIT, RunMode.LIVE, INIT + timedelta(hours=9),
                                        grid_deg=GRID_DEG)
        await db.admin_override_run(session, run_id, {RunStatus.CREATED},
                                    RunStatus.QUERYING_MINERS)
        for hotkey in ("5A", "5B"):
            await db.insert_response(session, run_id, hotkey, None)
    both_inserted = asyncio.Barrier(2)

    async def step(hotkey: str) -> RunStatus:
        async with session_factory.begin() as session:
            # The insert takes a key-share lock on the run row (foreign key) ...
            await db.store_scores(session, run_id, hotkey, [
                ComponentRecord(ScoreKind.DAY1, "all", 0, 0, Metric.SCORE, 0.5)])
            await both_inserted.wait()
            # ... which the roll-up's row lock must not wait on.
            return await db.refresh_run_status(session, run_id)

    statuses = await asyncio.wait_for(asyncio.gather(step("5A"), step("5B")), timeout=30)
    assert statuses == [RunStatus.QUERYING_MINERS] * 2
    async with session_factory() as session:
        assert [s for _, _, s in await db.responses_of_run(session, run_id)] == [
            MinerResponseStatus.CREATED] * 2

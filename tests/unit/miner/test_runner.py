"""The job runner: one task per job, failures recorded with their reason, cancel on close."""

import asyncio
from datetime import UTC, datetime
from typing import Any

from gaia.miner.database import JobRecord
from gaia.miner.runner import JobRunner
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus

NOW = datetime(2026, 11, 28, tzinfo=UTC)


def record(job_id: str) -> JobRecord:
    return JobRecord(
        job_id=job_id,
        miner_hotkey="hk",
        gfs_init_time=NOW,
        model="persistence",
        status=MinerJobStatus.FETCHING_INPUTS,
        leads_done=0,
        leads_total=40,
        attempts=0,
        error=None,
        manifest_hash=None,
        requested_by="v",
        created_at=NOW,
        updated_at=NOW,
        finished_at=None,
    )


class RecordingDatabase:
    def __init__(self) -> None:
        self.failures: list[tuple[str, str]] = []

    async def mark_failed(self, job_id: str, error: str, now: datetime) -> bool:
        self.failures.append((job_id, error))
        return True


async def test_a_job_runs_once_at_a_time_and_failures_are_recorded() -> None:
    release = asyncio.Event()
    runs: list[str] = []

    async def execute(job: JobRecord) -> None:
        runs.append(job.job_id)
        await release.wait()
        raise MemoryError("model needs 80 GB")

    db: Any = RecordingDatabase()
    runner = JobRunner(execute, db, lambda: NOW)
    assert runner.ensure_running(record("a"))
    assert not runner.ensure_running(record("a"))
    await asyncio.sleep(0)
    release.set()
    await asyncio.sleep(0.01)
    assert runs == ["a"]
    assert db.failures == [("a", "MemoryError: model needs 80 GB")]
    assert runner.ensure_running(record("a"))  # finished: a new run may start
    await runner.close()


async def test_close_cancels_without_recording_a_failure() -> None:
    started = asyncio.Event()

    async def execute(job: JobRecord) -> None:
        started.set()
        await asyncio.sleep(3600)

    db: Any = RecordingDatabase()
    runner = JobRunner(execute, db, lambda: NOW)
    runner.ensure_running(record("b"))
    await started.wait()
    await runner.close()
    assert db.failures == []

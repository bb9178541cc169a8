"""What the localnet shows while the run goes: one consistent read of the validator database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus
from gaia.validator.health import health_snapshot

FINISHED = frozenset({RunStatus.COMPLETED, RunStatus.ERROR})


@dataclass(frozen=True)
class MinerState:
    status: MinerResponseStatus
    failed_step: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class Snapshot:
    run_id: int | None
    run_status: RunStatus | None  # None until the run row exists
    run_error: str | None
    miners: dict[str, MinerState] = field(default_factory=dict)  # by hotkey
    jobs: dict[str, int] = field(default_factory=dict)  # job state -> count

    @property
    def finished(self) -> bool:
        return self.run_status in FINISHED

    @property
    def run_label(self) -> str:
        """The run's status as shown, ``waiting`` before the run row exists."""
        return "waiting" if self.run_status is None else self.run_status.value


async def take_snapshot(session: AsyncSession) -> Snapshot:
    """The newest run, its miners' states and the queue's jobs by state."""
    run = await session.scalar(
        select(WeatherForecastRun).order_by(WeatherForecastRun.id.desc()).limit(1))
    jobs = (await health_snapshot(session))["jobs"]
    if run is None:
        return Snapshot(None, None, None, {}, jobs)
    responses = await session.scalars(
        select(WeatherMinerResponse).where(WeatherMinerResponse.run_id == run.id))
    miners = {r.miner_hotkey: MinerState(r.status, r.failed_step, r.failure_reason)
              for r in responses}
    return Snapshot(run.id, run.status, run.error, miners, jobs)

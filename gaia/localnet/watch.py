"""What the localnet shows while the run goes: one consistent read of the validator database."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.validator.health import health_snapshot


@dataclass(frozen=True)
class MinerState:
    status: str
    failed_step: str | None = None
    failure_reason: str | None = None


@dataclass(frozen=True)
class Snapshot:
    run_id: int | None
    run_status: str  # "waiting" until the run row exists
    run_error: str | None
    miners: dict[str, MinerState] = field(default_factory=dict)  # by hotkey
    jobs: dict[str, int] = field(default_factory=dict)  # job state -> count

    @property
    def finished(self) -> bool:
        return self.run_status in ("completed", "error")


async def take_snapshot(session: AsyncSession) -> Snapshot:
    """The newest run, its miners' states and the queue's jobs by state."""
    run = await session.scalar(
        select(WeatherForecastRun).order_by(WeatherForecastRun.id.desc()).limit(1))
    jobs = (await health_snapshot(session))["jobs"]
    if run is None:
        return Snapshot(None, "waiting", None, {}, jobs)
    responses = await session.scalars(
        select(WeatherMinerResponse).where(WeatherMinerResponse.run_id == run.id))
    miners = {r.miner_hotkey: MinerState(r.status.value, r.failed_step, r.failure_reason)
              for r in responses}
    return Snapshot(run.id, run.status.value, run.error, miners, jobs)

"""The pause switch: while paused the validator creates no run and starts no miner chain.

Two levers, either one pauses:

- the shared switch, a row in ``validator_pause`` (when, why), set by ``python -m
  gaia.validator.admin pause [--reason TEXT]`` and cleared by ``resume``; every process on
  every host reads it from the database, so one command pauses them all;
- the setting ``validator.paused`` (``--paused``, ``GAIA_VALIDATOR__PAUSED``), which pauses
  the one process it is given to whatever the database says.

What a pause holds, and what goes on:

- **No new run.** The scheduler does not enqueue the day's ``weather.run.create`` while
  paused; its slot stays unused, so a tick after ``resume`` creates the day's run while its
  commit window is open (after it, the day is skipped, as for a validator that was down). A
  ``weather.run.create`` queued before the pause (or a hindcast) waits in the queue.
- **No new miner chain.** A miner's chain starts at the fan-out (``weather.orchestrate``:
  its response row and its ``weather.query_miner`` job are written in one transaction). A
  fan-out due while paused waits; one still held at its run's commit deadline ends the run
  in ``error`` ("paused"), since no miner could commit in time any more.
- **Started chains drain**: their queries, polls, day-1 and ERA5 scoring run to the end. A
  miner that accepted ``initiate-fetch`` is computing its forecast; freezing its chain would
  let the commit deadline pass and fail it as late, for the validator's pause, and would
  leave live work in the tables that a rollback (``db downgrade``) then has to map back.
  Draining instead reaches a quiet point within hours (the last commit deadline plus day-1
  scoring), with every started forecast scored.
- The metagraph sync and the weights go on, from the scores that exist.

Held jobs wait with :class:`~gaia.jobs.outcomes.NotReady` (no attempt used) and look again
every :data:`PAUSE_RECHECK`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.validator_schema import ValidatorPause
from gaia.jobs.outcomes import Invalid, NotReady
from gaia.jobs.queue import job_counts
from gaia.jobs.schema import JobStatus
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob

PAUSE_RECHECK = timedelta(minutes=1)
BEFORE_COMMIT_JOBS = frozenset({WeatherJob.RUN_CREATE, WeatherJob.SEED, WeatherJob.ORCHESTRATE,
                                WeatherJob.QUERY_MINER, WeatherJob.POLL_MINER})
"""The jobs of a run or a miner before its forecast is committed: a pause has drained when
none of them is live (day-1 and ERA5 scoring of committed forecasts may still run)."""


@dataclass(frozen=True)
class PauseState:
    since: datetime | None  # when the shared switch was set; None: it is not
    reason: str
    forced: bool  # validator.paused on this process

    @property
    def paused(self) -> bool:
        return self.since is not None or self.forced

    def describe(self) -> str:
        """``running``, or ``paused since 2026-11-28 17:50 UTC (reason)`` and/or the setting."""
        parts = []
        if self.since is not None:
            why = f" ({self.reason})" if self.reason else ""
            parts.append(f"paused since {self.since:%Y-%m-%d %H:%M} UTC{why}")
        if self.forced:
            parts.append("paused by validator.paused on this process")
        return "; ".join(parts) or "running"


async def pause_state(session: AsyncSession, *, forced: bool) -> PauseState:
    row = await session.get(ValidatorPause, 1)
    if row is None:
        return PauseState(None, "", forced)
    return PauseState(row.paused_at, row.reason, forced)


async def pause(session: AsyncSession, reason: str, now: datetime) -> str:
    """Set the shared switch; a second pause keeps the first one's time and reason."""
    inserted = await session.scalar(
        insert(ValidatorPause).values(id=1, paused_at=now, reason=reason)
        .on_conflict_do_nothing().returning(ValidatorPause.id)
    )
    state = await pause_state(session, forced=False)
    if inserted is None:
        return f"already {state.describe()}; nothing changed"
    return (f"{state.describe()}: no new run or miner chain starts; started chains drain, "
            "metagraph sync and weights go on")


async def resume(session: AsyncSession) -> str:
    """Clear the shared switch; the day's run follows at the next tick if its window is open."""
    was = await session.scalar(delete(ValidatorPause).returning(ValidatorPause.paused_at))
    if was is None:
        return "not paused; nothing changed"
    return (f"resumed (paused since {was:%Y-%m-%d %H:%M} UTC): the day's run is created at the "
            "scheduler's next tick while its commit window is open")


async def status_line(session: AsyncSession) -> str:
    """The shared switch for ``admin runs``; while paused, whether the drain is done."""
    state = await pause_state(session, forced=False)
    if not state.paused:
        return f"validator: {state.describe()}"
    live = sum(n for (job_type, status), n in (await job_counts(session)).items()
               if job_type in BEFORE_COMMIT_JOBS and status in (JobStatus.QUEUED, JobStatus.RUNNING))
    drain = (f"{live} run or miner jobs before their commit still live (draining)" if live
             else "drained: no run or miner job before its commit is live")
    return f"validator: {state.describe()}; {drain}"


def held(state: PauseState, what: str, now: datetime, deadline: datetime) -> NotReady | Invalid:
    """The outcome of a job that may not start ``what`` while paused: wait, or give up once
    ``deadline`` (the run's commit deadline) has passed."""
    if now >= deadline:
        return Invalid(f"{what} held past the commit deadline {deadline:%Y-%m-%d %H:%M} UTC: "
                       f"validator {state.describe()}")
    return NotReady(min(now + PAUSE_RECHECK, deadline), f"{what} held: validator "
                    f"{state.describe()}")


async def hold_if_paused(
    session: AsyncSession, *, forced: bool, what: str, now: datetime, deadline: datetime,
) -> None:
    """Raise :func:`held`'s outcome while paused; return when running."""
    state = await pause_state(session, forced=forced)
    if state.paused:
        raise held(state, what, now, deadline)

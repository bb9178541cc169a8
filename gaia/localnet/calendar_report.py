"""What the calendar simulation saw, a day at a time: runs, leads scored, weights, miner disk.

:class:`CalendarObserver` looks at the system each time it is at rest (before the clock
jumps): it notes the simulated moment each run's ERA5 lead was first scored and kills the
localnet's dying miner once it has accepted a job. :func:`day_record` reads one day's end
from the validator database, the static chain's weight history and the miners' disks;
:func:`problems` lists what a healthy month must not show; :func:`write_calendar` writes
``calendar.json`` and a PNG of each miner's weight by day.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.database.validator_schema import (
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.jobs.schema import ValidatorJob
from gaia.localnet.subnet import Subnet
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.scoring.records import ScoreKind
from gaia.tasks.defined_tasks.weather.states import (
    TERMINAL_RESPONSE_STATUSES,
    MinerResponseStatus,
    RunMode,
    RunStatus,
)
from gaia.tasks.defined_tasks.weather.variables import ERA5_LEAD_HOURS

if TYPE_CHECKING:
    from gaia.localnet.calendar import InProcessMiner

S = MinerResponseStatus
ACCEPTED = frozenset({S.FETCH_INITIATED, S.INFERENCE_RUNNING})
PRE_COMMIT = frozenset({S.CREATED, S.FETCH_INITIATED, S.INFERENCE_RUNNING})
DAY1 = frozenset({S.FORECAST_READY, S.DAY1_SCORING})
GRACE = timedelta(days=1)  # how long past its due time a step may take in a healthy system


@dataclass(frozen=True)
class RunDay:
    id: int
    gfs_init_time: str
    status: RunStatus
    leads_scored: dict[str, str]  # lead hours -> simulated ISO time it was first scored
    responses: dict[str, int]  # state -> count


@dataclass(frozen=True)
class DayRecord:
    date: str
    weights: dict[str, float] | None  # role -> weight of the day's last submission
    weights_submitted: int
    runs: list[RunDay]
    miner_disk_bytes: dict[str, int]
    stranded: list[str]  # responses left non-terminal past their due time

    def line(self, number: int) -> str:
        states: Counter[str] = Counter()
        for run in self.runs:
            states.update(run.responses)
        leads = sum(1 for run in self.runs for moment in run.leads_scored.values()
                    if moment.startswith(self.date))
        weights = ("none" if self.weights is None else
                   ", ".join(f"{role} {w:.3f}" for role, w in sorted(self.weights.items())))
        return (f"day {number:>2} {self.date}: {len(self.runs)} runs "
                f"({', '.join(sorted({r.status.value for r in self.runs})) or '-'}); miners "
                f"{dict(sorted(states.items()))}; ERA5 leads scored today {leads}; weights "
                f"submitted {self.weights_submitted}x: {weights}")


@dataclass
class Calendar:
    started: datetime
    days: list[DayRecord] = field(default_factory=list)
    jumps: int = 0
    waited_s: dict[str, float] = field(default_factory=dict)  # real seconds, by cause

    def to_json(self) -> dict[str, Any]:
        return {"started": self.started.isoformat(), "clock_jumps": self.jumps,
                "real_seconds_by_cause": self.waited_s,
                "days": [asdict(day) for day in self.days]}


@dataclass
class CalendarObserver:
    factory: async_sessionmaker[AsyncSession]
    miners: Sequence[InProcessMiner]
    say: Callable[[str], None]
    leads_scored: dict[int, dict[int, datetime]] = field(default_factory=dict)
    _era5_jobs_seen: tuple[int, datetime | None] = (0, None)

    async def observe(self, now: datetime) -> None:
        async with self.factory() as session:
            await self._kill_the_dying(session)
            era5_jobs = (await session.execute(
                select(func.count(), func.max(ValidatorJob.updated_at))
                .where(ValidatorJob.job_type == WeatherJob.ERA5_SCORE))).one()
            if tuple(era5_jobs) != self._era5_jobs_seen:
                self._era5_jobs_seen = tuple(era5_jobs)  # type: ignore[assignment]
                await self._note_leads(session, now)

    async def _note_leads(self, session: AsyncSession, now: datetime) -> None:
        rows = await session.execute(
            select(WeatherMinerScore.run_id, WeatherMinerScore.lead_hours)
            .where(WeatherMinerScore.kind == ScoreKind.ERA5)
            .group_by(WeatherMinerScore.run_id, WeatherMinerScore.lead_hours))
        for run_id, lead in rows:
            self.leads_scored.setdefault(run_id, {}).setdefault(lead, now)

    async def _kill_the_dying(self, session: AsyncSession) -> None:
        for miner in self.miners:
            spec = miner.member.spec
            if spec is None or not spec.dies or not miner.running:
                continue
            accepted = await session.scalar(
                select(func.count()).select_from(WeatherMinerResponse).where(
                    WeatherMinerResponse.miner_hotkey == miner.member.hotkey,
                    WeatherMinerResponse.status.in_(list(ACCEPTED))))
            if accepted:
                await miner.stop()
                self.say(f"{spec.role} accepted its job and was stopped, as in a crash; it "
                         "stays down")


async def day_record(session: AsyncSession, subnet: Subnet, end_of_day: datetime,
                     leads_scored: dict[int, dict[int, datetime]],
                     submissions: list[dict[str, Any]]) -> DayRecord:
    runs = list(await session.scalars(
        select(WeatherForecastRun).where(WeatherForecastRun.mode == RunMode.LIVE)
        .order_by(WeatherForecastRun.gfs_init_time)))
    responses = (await session.execute(
        select(WeatherMinerResponse.run_id, WeatherMinerResponse.status, func.count())
        .group_by(WeatherMinerResponse.run_id, WeatherMinerResponse.status))).all()
    by_run: dict[int, dict[str, int]] = {}
    for run_id, status, count in responses:
        by_run.setdefault(run_id, {})[status.value] = int(count)
    return DayRecord(
        date=(end_of_day - timedelta(seconds=1)).date().isoformat(),
        weights=_weights_by_role(subnet, submissions[-1]) if submissions else None,
        weights_submitted=len(submissions),
        runs=[RunDay(run.id, run.gfs_init_time.isoformat(), run.status,
                     {str(lead): moment.isoformat()
                      for lead, moment in sorted(leads_scored.get(run.id, {}).items())},
                     by_run.get(run.id, {})) for run in runs],
        miner_disk_bytes={m.spec.role: _disk_bytes(subnet.root / m.spec.role / "forecasts")
                          for m in subnet.miners if m.spec is not None},
        stranded=await stranded_responses(session, end_of_day, RunTiming()),
    )


def _weights_by_role(subnet: Subnet, submission: dict[str, Any]) -> dict[str, float]:
    roles = {m.uid: m.spec.role for m in subnet.miners if m.spec is not None}
    return {roles.get(uid, f"uid {uid}"): float(weight)
            for uid, weight in zip(submission["uids"], submission["weights"], strict=True)}


def _disk_bytes(root: Path) -> int:
    """Bytes of the files under ``root``: tens of thousands of them in as many folders (one
    per zarr chunk), so it walks with ``os.scandir``, whose entries know their type."""
    total, folders = 0, [str(root)]
    while folders:
        try:
            entries = os.scandir(folders.pop())
        except FileNotFoundError:  # purged while we walked, or never made
            continue
        with entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    folders.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
    return total


async def stranded_responses(session: AsyncSession, now: datetime,
                             timing: RunTiming) -> list[str]:
    """Responses still non-terminal a grace period after the moment their state should have
    ended: the commit deadline (before commit), a day after it (day-1), the last lead's
    ERA5 due time (ERA5)."""
    rows = await session.execute(
        select(WeatherMinerResponse.id, WeatherMinerResponse.miner_hotkey,
               WeatherMinerResponse.status, WeatherForecastRun.gfs_init_time,
               WeatherForecastRun.commit_deadline)
        .join(WeatherForecastRun, WeatherForecastRun.id == WeatherMinerResponse.run_id)
        .where(WeatherMinerResponse.status.not_in(list(TERMINAL_RESPONSE_STATUSES))))
    stranded = []
    for response_id, hotkey, status, init_time, deadline in rows:
        if status in PRE_COMMIT:
            due = deadline
        elif status in DAY1:
            due = deadline + timedelta(days=1)
        else:
            due = timing.era5_due(init_time, max(ERA5_LEAD_HOURS))
        if now > due + GRACE:
            stranded.append(f"response {response_id} ({hotkey[:8]}) still {status}, due {due}")
    return stranded


def problems(calendar: Calendar, timing: RunTiming) -> list[str]:
    """Everything a healthy stretch of days must not show (empty when all is well)."""
    found = []
    end = calendar.started + timedelta(days=len(calendar.days))
    for number, day in enumerate(calendar.days, start=1):
        if day.weights_submitted == 0:
            found.append(f"day {number} ({day.date}): no weights submitted")
        found += [f"day {number}: {text}" for text in day.stranded]
    last = calendar.days[-1] if calendar.days else None
    for run in last.runs if last else []:
        init = datetime.fromisoformat(run.gfs_init_time)
        if timing.era5_due(init, max(ERA5_LEAD_HOURS)) < end and run.status is not RunStatus.COMPLETED:
            found.append(f"run {run.id} ({run.gfs_init_time}) is {run.status}, its last lead "
                         "was due before the end")
        for lead, moment in run.leads_scored.items():
            published = init + timedelta(hours=int(lead)) + timing.era5_delay
            if datetime.fromisoformat(moment) - published > GRACE:
                found.append(f"run {run.id}: lead {lead} h scored at {moment}, more than a "
                             f"day after ERA5 published it ({published.isoformat()})")
    return found


def write_calendar(calendar: Calendar, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    json_path, png_path = folder / "calendar.json", folder / "weights_by_day.png"
    json_path.write_text(json.dumps(calendar.to_json(), indent=1))
    _plot_weights(calendar, png_path)
    return json_path, png_path


def _plot_weights(calendar: Calendar, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    roles = sorted({role for day in calendar.days for role in (day.weights or {})})
    figure, axes = plt.subplots(figsize=(8, 4.5))
    days = list(range(1, len(calendar.days) + 1))
    for role in roles:
        axes.plot(days, [(day.weights or {}).get(role, 0.0) for day in calendar.days],
                  marker="o", label=role)
    axes.set_xlabel("simulated day")
    axes.set_ylabel("weight set at the end of the day")
    axes.set_title("Each miner's chain weight by day (live runs, production timeline)")
    axes.set_ylim(bottom=0)
    if roles:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)

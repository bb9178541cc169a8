"""Time rules of the daily run, as pure functions of an injected clock (README.md, "The
timeline a validator and a miner live on").

- The day's run is due at ``schedule_hour_utc`` (18:00 by default).
- Its GFS init time is the latest cycle complete at that moment: a cycle counts as complete
  ``publication_delay`` after its init time (12Z at 18:00 with the default 3.5 h).
- Miners must commit before the next cycle's analysis is published: the commit deadline is
  ``init + 6 h + publication_delay``.
- A validator that was down at the scheduled time still creates the day's run while that
  deadline has not passed; after it, the day is skipped.
- ERA5 scoring is progressive: each lead is due once ERA5 covers it, about ``era5_delay``
  after its valid time (``lead_due``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from gaia.tasks.defined_tasks.weather.variables import ERA5_DELAY

CYCLE = timedelta(hours=6)


def floor_to_cycle(moment: datetime) -> datetime:
    moment = moment.astimezone(UTC)
    return moment.replace(hour=moment.hour - moment.hour % 6, minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DailyRun:
    """The live run of one day: its slot date, GFS init time and commit deadline."""

    day: date
    scheduled_at: datetime
    init_time: datetime
    commit_deadline: datetime

    @property
    def slot_key(self) -> str:
        return self.day.isoformat()


@dataclass(frozen=True)
class RunTiming:
    schedule_hour_utc: int = 18
    publication_delay: timedelta = timedelta(hours=3, minutes=30)
    era5_delay: timedelta = ERA5_DELAY  # the protocol's nominal delay; miners' retention counts on it
    truth_wait_limit: timedelta = timedelta(days=30)

    def latest_complete_cycle(self, moment: datetime) -> datetime:
        return floor_to_cycle(moment - self.publication_delay)

    def commit_deadline(self, init_time: datetime) -> datetime:
        return init_time + CYCLE + self.publication_delay

    def daily_run(self, day: date) -> DailyRun:
        scheduled = datetime.combine(day, time(self.schedule_hour_utc), tzinfo=UTC)
        init = self.latest_complete_cycle(scheduled)
        return DailyRun(day, scheduled, init, self.commit_deadline(init))

    def next_scheduled(self, now: datetime) -> datetime:
        """The first scheduled run time strictly after ``now``."""
        today = now.astimezone(UTC).date()
        for day in (today, today + timedelta(days=1)):
            scheduled = self.daily_run(day).scheduled_at
            if scheduled > now:
                return scheduled
        raise AssertionError("a day always has a later scheduled time tomorrow")

    def due_run(self, now: datetime) -> DailyRun | None:
        """The day's run if it is due now (scheduled time passed, commit window open)."""
        today = now.astimezone(UTC).date()
        for day in (today, today - timedelta(days=1)):
            run = self.daily_run(day)
            if run.scheduled_at <= now < run.commit_deadline:
                return run
        return None

    def era5_due(self, init_time: datetime, last_lead_hours: int) -> datetime:
        return init_time + timedelta(hours=last_lead_hours) + self.era5_delay

    def lead_due(self, init_time: datetime, lead_hours: int) -> datetime:
        """When ERA5 is expected to cover one lead: its valid time plus ``era5_delay``."""
        return init_time + timedelta(hours=lead_hours) + self.era5_delay

    def truth_deadline(self, init_time: datetime, last_lead_hours: int) -> datetime:
        """When a run still lacking ERA5 truth gives up."""
        return init_time + timedelta(hours=last_lead_hours) + self.truth_wait_limit


def _slot_start(now: datetime, every: timedelta) -> int:
    seconds = int(every.total_seconds())
    if seconds <= 0:
        raise ValueError(f"period must be positive, got {every}")
    return int(now.timestamp()) // seconds * seconds


def next_slot(now: datetime, every: timedelta) -> datetime:
    """When the slot after the one holding ``now`` begins."""
    return datetime.fromtimestamp(_slot_start(now, every) + int(every.total_seconds()), UTC)


def periodic_slot(now: datetime, every: timedelta) -> str:
    """A slot label for work done once per ``every`` (``2026-11-28T18:10``)."""
    return datetime.fromtimestamp(_slot_start(now, every), UTC).strftime("%Y-%m-%dT%H:%M:%S")

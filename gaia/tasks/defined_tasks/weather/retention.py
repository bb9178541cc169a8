"""The protocol's retention promise: how long a miner keeps which files of a forecast.

Everything counts from the forecast's GFS init time, not from when the miner finished it
(a late finish buys no longer life), with one floor for hindcasts (the third point):

- **The promise** (:data:`RETENTION_PROMISE`, 16 days): every file a validator still reads
  stays until the last lead has been scorable for a margin, ``init + 240 h + ERA5 delay (5 d)
  + 1 day`` (README.md, the timeline). The whole store (metadata, coordinates, manifest, the
  chunks of the ERA5 leads 24, 48, ..., 240 h) lives that long, then the forecast goes.
- **The day-1 window** (:data:`DAY1_WINDOW`, 2 days): the chunks of the leads only day-1
  scoring reads (6, 12, 18, 30, 36, ... h: every lead that is not an ERA5 lead) may go after
  it. Day-1 runs as soon as a forecast is committed, before ``init + 9.5 h`` (the commit
  deadline), and its retries (3 attempts, 300 and 600 s apart, handler timeouts up to 20 min)
  end within about an hour of that; two days leave a day and a half for a validator whose
  queue is backed up or that was restarted.
- Neither goes sooner than a day after the forecast was *finished*
  (:data:`MIN_KEEP_AFTER_FINISH`): that changes nothing for a live run (it is finished
  before its commit deadline, init + 9.5 h, so finish + 1 day is before init + 2 days) and
  protects a hindcast (an init long past, as on local nets and in tests), which validators
  read, day-1 and ERA5, within hours of its commit.

Deleting those chunks does not break a later verified read: the validator's store answers
from the manifest and the consolidated metadata, and reading a lead fetches only that lead's
chunks, so an ERA5 lead still verifies; a deleted chunk is answered 404, which the validator
treats as the miner's fault only when it reads that lead.

:func:`schedule_retention_warnings` tells a validator operator when their schedule reads
files later than these promises.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from gaia.jobs.policy import RetryPolicy
from gaia.tasks.defined_tasks.weather.forecast_manifest import Manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    chunk_key,
    load_signed_manifest,
    store_file_path,
)
from gaia.tasks.defined_tasks.weather.pipeline.context import ERA5_LEAD_HOURS
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS, is_level_variable

SCORING_MARGIN = timedelta(days=1)
PROTOCOL_TIMING = RunTiming()  # the protocol's nominal delays (ERA5: 5 days after valid time)
RETENTION_PROMISE = (
    timedelta(hours=FORECAST_LEAD_HOURS[-1]) + PROTOCOL_TIMING.era5_delay + SCORING_MARGIN
)
DAY1_WINDOW = timedelta(days=2)
MIN_KEEP_AFTER_FINISH = timedelta(days=1)
_INIT = datetime(2000, 1, 1, tzinfo=UTC)  # any init: the schedule's times are relative to it
EARLY_LEAD_HOURS: tuple[int, ...] = tuple(
    lead for lead in FORECAST_LEAD_HOURS if lead not in ERA5_LEAD_HOURS
)


class RetentionTooShort(ValueError):
    """A miner's retention is shorter than the protocol promises validators."""


@dataclass(frozen=True)
class Cutoff:
    """Forecasts whose GFS init time and finish time are both before these may go (the
    query :meth:`gaia.miner.database.MinerDatabase.finished_within` runs)."""

    init_before: datetime
    finished_before: datetime


@dataclass(frozen=True)
class RetentionRule:
    """A miner's retention: the whole forecast ``keep`` after init, the early leads' chunks
    ``early_leads`` after init; longer than the protocol is allowed, shorter is not.

    Neither goes sooner than :data:`MIN_KEEP_AFTER_FINISH` after the forecast was finished:
    a hindcast (an init long past: local nets, tests) is scored right after it is committed.
    """

    keep: timedelta = RETENTION_PROMISE
    early_leads: timedelta = DAY1_WINDOW

    def __post_init__(self) -> None:
        if self.keep < RETENTION_PROMISE:
            raise RetentionTooShort(
                f"forecast retention {_days(self.keep)} is shorter than the protocol's promise "
                f"of {_days(RETENTION_PROMISE)} after init"
            )
        if not DAY1_WINDOW <= self.early_leads <= self.keep:
            raise RetentionTooShort(
                f"early-lead retention {_hours(self.early_leads)} must lie between the day-1 "
                f"window ({_hours(DAY1_WINDOW)}) and the forecast retention ({_hours(self.keep)})"
            )

    def expires_at(self, init_time: datetime, finished_at: datetime) -> datetime:
        """When the whole forecast may be deleted."""
        return max(init_time + self.keep, finished_at + MIN_KEEP_AFTER_FINISH)

    def early_leads_expire_at(self, init_time: datetime, finished_at: datetime) -> datetime:
        """When the chunks of the early (day-1-only) leads may be deleted."""
        return max(init_time + self.early_leads, finished_at + MIN_KEEP_AFTER_FINISH)

    def expired(self, now: datetime) -> Cutoff:
        """The forecasts whose retention has ended at ``now``."""
        return Cutoff(now - self.keep, now - MIN_KEEP_AFTER_FINISH)

    def early_leads_expired(self, now: datetime) -> Cutoff:
        """The forecasts that may lose their early leads at ``now``."""
        return Cutoff(now - self.early_leads, now - MIN_KEEP_AFTER_FINISH)


def early_lead_keys(manifest: Manifest) -> list[str]:
    """The chunk keys of ``manifest`` that no validator reads after the day-1 window."""
    levels = range(len(manifest.levels))
    keys: list[str] = []
    for index, lead in enumerate(manifest.lead_hours):
        if lead not in EARLY_LEAD_HOURS:
            continue
        for name in manifest.variables:
            if is_level_variable(name):
                keys += [chunk_key(name, index, level) for level in levels]
            else:
                keys.append(chunk_key(name, index, None))
    return keys


def retry_budget(policy: RetryPolicy) -> timedelta:
    """The longest a job of ``policy`` can keep reading after its first attempt starts:
    every backoff between attempts plus every attempt running to its (doubling) timeout."""
    delays = sum(policy.delay_after(attempt) for attempt in range(1, policy.max_attempts))
    timeouts, timeout = 0.0, policy.timeout_s
    for _ in range(policy.max_attempts):
        timeouts += timeout
        timeout = policy.next_timeout(timeout)
    return timedelta(seconds=delays + timeouts)


def schedule_retention_warnings(
    timing: RunTiming,
    era5_leads: Sequence[int] = ERA5_LEAD_HOURS,
    promise: timedelta = RETENTION_PROMISE,
    *,
    day1_window: timedelta = DAY1_WINDOW,
    era5_policy: RetryPolicy = RETRY_CONFIG[WeatherJob.ERA5_SCORE],
    day1_policy: RetryPolicy = RETRY_CONFIG[WeatherJob.DAY1_SCORE],
) -> list[str]:
    """What in a validator's schedule reads miners' files after they may be deleted.

    ERA5: the last lead is read from ``era5_due`` (last lead + ``era5_delay`` after init)
    until its retries end; day-1: from the commit deadline until its retries end. Either
    past its promise (times after init) gives one line naming the numbers; none: ``[]``.
    """
    warnings: list[str] = []
    era5_end = timing.era5_due(_INIT, max(era5_leads)) - _INIT + retry_budget(era5_policy)
    if era5_end > promise:
        warnings.append(
            f"ERA5 scoring may read lead {max(era5_leads)} h until init + {_hours(era5_end)} "
            f"(ERA5 delay {_hours(timing.era5_delay)}, retries {_hours(retry_budget(era5_policy))}),"
            f" but miners keep forecasts only until init + {_hours(promise)}: "
            "reads after that are answered 404 and fail the miner"
        )
    day1_end = timing.commit_deadline(_INIT) - _INIT + retry_budget(day1_policy)
    if day1_end > day1_window:
        warnings.append(
            f"day-1 scoring may read until init + {_hours(day1_end)}, but miners may delete the "
            f"day-1-only leads {EARLY_LEAD_HOURS[:3]}... at init + {_hours(day1_window)}"
        )
    return warnings


def _hours(span: timedelta) -> str:
    return f"{round(span / timedelta(hours=1), 2):g} h"


def _days(span: timedelta) -> str:
    return f"{round(span / timedelta(days=1), 2):g} days"


EARLY_LEADS_DELETED = ".early-leads-deleted"
"""Marker left in a store whose early leads are gone: later purges skip it without reading
its manifest (a miner holds up to 14 such stores, each listing thousands of files). It is
not in the manifest, so it is never served."""


def delete_early_leads(root: Path) -> int:
    """Delete the early leads' chunk files of the finished store at ``root``; returns how
    many were there. Idempotent: files already gone are skipped, a marked store at once."""
    marker = root / EARLY_LEADS_DELETED
    if marker.exists():
        return 0
    manifest = load_signed_manifest(root).manifest
    deleted = 0
    for key in early_lead_keys(manifest):
        path = store_file_path(root, key, manifest)
        if path.is_file():
            path.unlink()
            deleted += 1
    marker.touch()
    return deleted

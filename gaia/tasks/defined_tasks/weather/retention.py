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

The validator checks its own schedule against these promises
(:mod:`gaia.tasks.defined_tasks.weather.pipeline.retention_schedule`); this module knows
only the protocol (its leads and the nominal ERA5 delay), so the miner imports no validator
code through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from gaia.tasks.defined_tasks.weather.forecast_manifest import Manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    chunk_key,
    load_signed_manifest,
    store_file_path,
)
from gaia.tasks.defined_tasks.weather.variables import (
    ERA5_DELAY,
    ERA5_LEAD_HOURS,
    FORECAST_LEAD_HOURS,
    is_level_variable,
)

SCORING_MARGIN = timedelta(days=1)
RETENTION_PROMISE = timedelta(hours=FORECAST_LEAD_HOURS[-1]) + ERA5_DELAY + SCORING_MARGIN
DAY1_WINDOW = timedelta(days=2)
MIN_KEEP_AFTER_FINISH = timedelta(days=1)
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
                f"early-lead retention {hours_text(self.early_leads)} must lie between the "
                f"day-1 window ({hours_text(DAY1_WINDOW)}) and the forecast retention "
                f"({hours_text(self.keep)})"
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


def hours_text(span: timedelta) -> str:
    """A span in hours as the warnings and errors print it: ``54.83 h``."""
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

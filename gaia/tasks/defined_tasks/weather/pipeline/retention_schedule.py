"""The validator's side of the miners' retention promise: does this schedule, with its
retries, read a miner's files after the protocol lets the miner delete them?

The promise itself (:mod:`gaia.tasks.defined_tasks.weather.retention`) is the protocol's and
the miner's; what reads when is the validator's (its :class:`RunTiming` and the retry table),
so the check lives here and the validator's runtime logs its warnings at start.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from gaia.jobs.policy import RetryPolicy
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.retention import (
    DAY1_WINDOW,
    EARLY_LEAD_HOURS,
    RETENTION_PROMISE,
    hours_text,
)
from gaia.tasks.defined_tasks.weather.variables import ERA5_LEAD_HOURS

_INIT = datetime(2000, 1, 1, tzinfo=UTC)  # any init: the schedule's times are relative to it


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
            f"ERA5 scoring may read lead {max(era5_leads)} h until init + {hours_text(era5_end)} "
            f"(ERA5 delay {hours_text(timing.era5_delay)}, "
            f"retries {hours_text(retry_budget(era5_policy))}),"
            f" but miners keep forecasts only until init + {hours_text(promise)}: "
            "reads after that are answered 404 and fail the miner"
        )
    day1_end = timing.commit_deadline(_INIT) - _INIT + retry_budget(day1_policy)
    if day1_end > day1_window:
        warnings.append(
            f"day-1 scoring may read until init + {hours_text(day1_end)}, but miners may "
            f"delete the day-1-only leads {EARLY_LEAD_HOURS[:3]}... at init + "
            f"{hours_text(day1_window)}"
        )
    return warnings

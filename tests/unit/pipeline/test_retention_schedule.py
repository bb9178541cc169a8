"""The validator's start-up check of its schedule against the miners' retention promise."""

from __future__ import annotations

from datetime import timedelta

from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.retention_schedule import (
    retry_budget,
    schedule_retention_warnings,
)
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.retention import RETENTION_PROMISE
from gaia.tasks.defined_tasks.weather.variables import ERA5_DELAY, ERA5_LEAD_HOURS


def test_the_era5_retry_budget_is_backoffs_plus_doubling_timeouts() -> None:
    # 4 backoffs of 3600 s, then timeouts 900 + 1800 + 3600 + 3600 + 3600 s
    assert retry_budget(RETRY_CONFIG[WeatherJob.ERA5_SCORE]) == timedelta(hours=7.75)


def test_the_default_schedule_reads_within_the_promise() -> None:
    assert schedule_retention_warnings(RunTiming(), ERA5_LEAD_HOURS, RETENTION_PROMISE) == []


def test_a_late_era5_schedule_is_named_with_its_numbers() -> None:
    timing = RunTiming(era5_delay=timedelta(days=20))
    warnings = schedule_retention_warnings(timing, ERA5_LEAD_HOURS, RETENTION_PROMISE)
    assert len(warnings) == 1
    # 240 h + 480 h + 7.75 h of retries, against a promise of 384 h
    for number in ("lead 240 h", "init + 727.75 h", "ERA5 delay 480 h", "retries 7.75 h",
                   "init + 384 h"):
        assert number in warnings[0], (number, warnings[0])


def test_a_day1_schedule_past_the_day1_window_is_named() -> None:
    timing = RunTiming(publication_delay=timedelta(hours=48))
    warnings = schedule_retention_warnings(timing, ERA5_LEAD_HOURS, RETENTION_PROMISE)
    assert len(warnings) == 1 and "day-1 scoring may read until init + 54.83 h" in warnings[0]
    assert "init + 48 h" in warnings[0]


def test_the_default_schedule_waits_the_era5_delay_the_promise_counts_on() -> None:
    assert RunTiming().era5_delay == ERA5_DELAY
    assert RETENTION_PROMISE == timedelta(hours=240) + ERA5_DELAY + timedelta(days=1)

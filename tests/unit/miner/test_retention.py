"""The retention rule as pure functions of init time, finish time and now; the miner's
settings that express it; the periodic loop's clock."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gaia.clock import VirtualClock
from gaia.config import MinerSettings
from gaia.miner.runtime import every
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.retention import (
    DAY1_WINDOW,
    EARLY_LEAD_HOURS,
    MIN_KEEP_AFTER_FINISH,
    RETENTION_PROMISE,
    Cutoff,
    RetentionRule,
    RetentionTooShort,
    early_lead_keys,
)
from gaia.tasks.defined_tasks.weather.variables import (
    DAY1_LEAD_HOURS,
    ERA5_LEAD_HOURS,
    FORECAST_LEAD_HOURS,
    is_level_variable,
)
from tests.fixtures.forecast_store import new_keypair, write_small_forecast

INIT = datetime(2026, 11, 20, 12, tzinfo=UTC)
FINISHED = INIT + timedelta(hours=7)  # a live run: inference done before the commit deadline
SECOND = timedelta(seconds=1)


def covers(cutoff: Cutoff, init_time: datetime, finished_at: datetime) -> bool:
    """What the miner's purge query selects, in memory."""
    return init_time < cutoff.init_before and finished_at < cutoff.finished_before


def test_the_promise_is_the_last_lead_plus_the_era5_delay_plus_a_day() -> None:
    assert RETENTION_PROMISE == timedelta(hours=240) + timedelta(days=5) + timedelta(days=1)
    assert RETENTION_PROMISE == timedelta(days=16)


def test_early_leads_are_exactly_the_leads_no_era5_score_reads() -> None:
    assert set(EARLY_LEAD_HOURS).isdisjoint(ERA5_LEAD_HOURS)
    assert sorted((*EARLY_LEAD_HOURS, *ERA5_LEAD_HOURS)) == list(FORECAST_LEAD_HOURS)
    assert (6, 12, 18, 30) == EARLY_LEAD_HOURS[:4] and len(EARLY_LEAD_HOURS) == 30
    assert {6, 12} <= set(EARLY_LEAD_HOURS) and 24 not in EARLY_LEAD_HOURS
    assert set(DAY1_LEAD_HOURS) - set(EARLY_LEAD_HOURS) == {24}


def test_a_live_forecast_loses_its_early_leads_after_two_days_and_goes_after_sixteen() -> None:
    rule = RetentionRule()
    assert rule.early_leads_expire_at(INIT, FINISHED) == INIT + timedelta(days=2)
    assert rule.expires_at(INIT, FINISHED) == INIT + timedelta(days=16)
    early, whole = INIT + timedelta(days=2), INIT + timedelta(days=16)
    assert not covers(rule.early_leads_expired(early - SECOND), INIT, FINISHED)
    assert covers(rule.early_leads_expired(early + SECOND), INIT, FINISHED)
    assert not covers(rule.expired(whole - SECOND), INIT, FINISHED)
    assert covers(rule.expired(whole + SECOND), INIT, FINISHED)


def test_retention_counts_from_the_init_time_not_from_a_late_finish() -> None:
    late = INIT + timedelta(days=1)  # a miner that finished a day late keeps no longer
    assert RetentionRule().expires_at(INIT, late) == INIT + RETENTION_PROMISE


def test_a_hindcast_is_kept_a_day_after_it_finished() -> None:
    old_init = datetime(2025, 1, 1, 6, tzinfo=UTC)
    finished = datetime(2026, 11, 28, 18, tzinfo=UTC)
    rule = RetentionRule()
    assert rule.expires_at(old_init, finished) == finished + MIN_KEEP_AFTER_FINISH
    assert rule.early_leads_expire_at(old_init, finished) == finished + MIN_KEEP_AFTER_FINISH
    assert not covers(rule.expired(finished + timedelta(hours=23)), old_init, finished)
    assert covers(rule.expired(finished + MIN_KEEP_AFTER_FINISH + SECOND), old_init, finished)


def test_a_live_forecast_finished_at_its_deadline_keeps_the_init_based_windows() -> None:
    deadline = RunTiming().commit_deadline(INIT)
    assert RetentionRule().early_leads_expire_at(INIT, deadline) == INIT + DAY1_WINDOW


def test_a_miner_may_keep_longer_but_not_shorter() -> None:
    longer = RetentionRule(keep=timedelta(days=30), early_leads=timedelta(days=30))
    assert longer.expires_at(INIT, FINISHED) == INIT + timedelta(days=30)
    with pytest.raises(RetentionTooShort, match="7 days is shorter than the protocol's promise"):
        RetentionRule(keep=timedelta(days=7))
    with pytest.raises(RetentionTooShort, match="between the day-1 window"):
        RetentionRule(early_leads=timedelta(hours=24))
    with pytest.raises(RetentionTooShort, match="between the day-1 window"):
        RetentionRule(keep=timedelta(days=16), early_leads=timedelta(days=17))


def test_miner_settings_default_to_the_protocol_and_refuse_shorter() -> None:
    settings = MinerSettings()
    assert (settings.forecast_retention_days, settings.early_lead_retention_hours) == (16.0, 48.0)
    assert settings.retention_rule() == RetentionRule()
    assert MinerSettings(forecast_retention_days=20).retention_rule().keep == timedelta(days=20)
    with pytest.raises(ValidationError, match="shorter than the protocol's promise of 16 days"):
        MinerSettings(forecast_retention_days=7)
    with pytest.raises(ValidationError, match="early-lead retention 12 h"):
        MinerSettings(early_lead_retention_hours=12)


def test_early_lead_keys_name_every_chunk_of_the_early_leads_and_nothing_else(tmp_path) -> None:
    leads = (6, 12, 18, 24, 30, 48)
    manifest = write_small_forecast(tmp_path / "store", new_keypair(), leads=leads).signed.manifest
    keys = early_lead_keys(manifest)
    fields = sum(len(manifest.levels) if is_level_variable(v) else 1 for v in manifest.variables)
    assert len(keys) == len(set(keys)) == 4 * fields  # leads 6, 12, 18, 30
    assert set(keys) <= set(manifest.files)
    kept_leads = {manifest.lead_hours.index(24), manifest.lead_hours.index(48)}
    assert not [k for k in keys if int(k.split("/c/")[1].split("/")[0]) in kept_leads]
    assert chunk_key("2t", manifest.lead_hours.index(30), None) in keys
    assert not [k for k in keys if "/c/" not in k]  # metadata and coordinates stay


async def test_the_periodic_loop_sleeps_on_the_injected_clock() -> None:
    clock = VirtualClock(INIT)
    runs: list[datetime] = []

    async def action() -> None:
        runs.append(clock())

    loop = asyncio.create_task(every(clock, 600.0, action, "test loop"))
    try:
        await asyncio.sleep(0.05)
        assert runs == [] and clock.next_wakeup() == INIT + timedelta(seconds=600)
        clock.advance(timedelta(seconds=600))
        await asyncio.sleep(0.05)
        clock.advance(timedelta(seconds=600))
        await asyncio.sleep(0.05)
        assert runs == [INIT + timedelta(seconds=600), INIT + timedelta(seconds=1200)]
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)

from datetime import UTC, date, datetime, timedelta

import pytest

from gaia.tasks.defined_tasks.weather.pipeline.timing import (
    RunTiming,
    floor_to_cycle,
    next_slot,
    periodic_slot,
)

T = RunTiming()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC)


def test_run_at_18z_uses_the_12z_cycle_and_commits_before_the_18z_analysis() -> None:
    run = T.daily_run(date(2026, 11, 28))
    assert run.scheduled_at == at(28, 18)
    assert run.init_time == at(28, 12)
    assert run.commit_deadline == at(28, 21, 30)
    assert run.slot_key == "2026-11-28"


def test_not_due_before_the_schedule() -> None:
    assert T.due_run(at(28, 17, 59)) is None


def test_due_at_the_schedule_and_late_while_the_window_is_open() -> None:
    assert T.due_run(at(28, 18)).init_time == at(28, 12)
    late = T.due_run(at(28, 19))
    assert late is not None and late.init_time == at(28, 12)


def test_skipped_once_the_commit_window_closed() -> None:
    assert T.due_run(at(28, 21, 30)) is None
    assert T.due_run(at(29, 3)) is None


def test_other_schedule_hours_pick_the_latest_complete_cycle() -> None:
    timing = RunTiming(schedule_hour_utc=2)
    run = timing.daily_run(date(2026, 11, 28))
    assert run.init_time == at(27, 18)
    assert timing.due_run(at(28, 2, 30)) == run


def test_era5_due_after_the_last_lead_plus_delay() -> None:
    assert T.era5_due(at(20, 12), 240) == at(20, 12) + timedelta(days=15)


def test_floor_and_slots() -> None:
    assert floor_to_cycle(at(28, 17, 59)) == at(28, 12)
    assert periodic_slot(at(28, 18, 7), timedelta(minutes=10)) == "2026-11-28T18:00:00"
    with pytest.raises(ValueError):
        periodic_slot(at(28, 18), timedelta(0))


def test_next_scheduled_is_strictly_after_now() -> None:
    assert T.next_scheduled(at(28, 17, 59)) == at(28, 18)
    assert T.next_scheduled(at(28, 18)) == at(29, 18)
    assert T.next_scheduled(at(28, 23)) == at(29, 18)


def test_next_slot_starts_the_following_period() -> None:
    hour = timedelta(hours=1)
    assert next_slot(at(28, 18, 10), hour) == at(28, 19)
    assert next_slot(at(28, 18), hour) == at(28, 19)
    assert periodic_slot(next_slot(at(28, 18, 10), hour), hour) == "2026-11-28T19:00:00"

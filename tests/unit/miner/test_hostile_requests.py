"""Strict parsing, the stranger budget, the connection counts and the retry policy (issue
13 items 4 and 9), without I/O."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from gaia.miner.auth import AddressLimiter
from gaia.miner.connections import ConnectionGuard, ConnectionLimits, address_key
from gaia.miner.database import JobRecord
from gaia.miner.jobs import RetryPolicy
from gaia.tasks.defined_tasks.weather.protocol import InitiateFetchRequest, MinerJobStatus

HOTKEY = "5FREZBzaQ5VSCgD1MN28qqwKdiJ8NPMajtJ3JEnvauicHS3k"
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)


@pytest.mark.parametrize("value", ["1795154400", 1795154400, 1795154400.0, "2026-11-20 06:00:00Z"])
def test_init_time_must_be_iso(value: object) -> None:
    body = {"gfs_init_time": value, "expected_miner_hotkey": HOTKEY, "protocol_version": "2"}
    with pytest.raises(ValidationError, match="ISO 8601"):
        InitiateFetchRequest.model_validate(body)
    with pytest.raises(ValidationError, match="ISO 8601"):
        InitiateFetchRequest.model_validate_json(json.dumps(body))


def test_iso_init_time_and_python_datetimes_still_parse() -> None:
    parsed = InitiateFetchRequest.model_validate_json(
        json.dumps({"gfs_init_time": "2026-11-20T06:00:00Z", "expected_miner_hotkey": HOTKEY})
    )
    assert parsed.gfs_init_time == T0
    assert InitiateFetchRequest(gfs_init_time=T0, expected_miner_hotkey=HOTKEY).gfs_init_time == T0


def test_address_budget_counts_refusals_per_minute() -> None:
    now = [0.0]
    limiter = AddressLimiter(2, clock=lambda: now[0])
    for _ in range(2):
        assert not limiter.exhausted("192.0.2.1")
        limiter.count("192.0.2.1")
    assert limiter.exhausted("192.0.2.1")
    assert not limiter.exhausted("192.0.2.2")
    now[0] = 61.0
    assert not limiter.exhausted("192.0.2.1")


def test_address_budget_shares_one_counter_past_its_table() -> None:
    limiter = AddressLimiter(1, max_tracked=1, clock=lambda: 0.0)
    limiter.count("192.0.2.1")
    limiter.count("192.0.2.2")  # no room: counted as the overflow
    assert limiter.exhausted("192.0.2.3")


def test_address_keys_group_ipv6_by_64() -> None:
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("192.0.2.1") == "192.0.2.1"


def test_connection_guard_caps_in_all_and_per_address() -> None:
    guard = ConnectionGuard(ConnectionLimits(max_connections=3, max_per_address=2,
                                             request_read_timeout_s=1.0))
    assert guard.admit("a") and guard.admit("a")
    assert not guard.admit("a")
    assert guard.admit("b")
    assert not guard.admit("c")  # three open in all
    guard.release("a")
    assert guard.admit("c")
    assert guard.open_connections == 3


def failed_job(attempts: int, failed_at: datetime) -> JobRecord:
    return JobRecord(
        job_id="j", miner_hotkey=HOTKEY, gfs_init_time=T0, model="m",
        status=MinerJobStatus.FAILED, leads_done=0, leads_total=40, attempts=attempts,
        error="boom", manifest_hash=None, requested_by=HOTKEY, created_at=T0,
        updated_at=failed_at, finished_at=failed_at,
    )


def test_retry_backoff_doubles_and_attempts_are_capped() -> None:
    policy = RetryPolicy(max_attempts=3, first_backoff=timedelta(minutes=5))
    job = failed_job(1, T0)
    assert policy.next_attempt_at(job) == T0 + timedelta(minutes=5)
    assert policy.next_attempt_at(replace(job, attempts=2)) == T0 + timedelta(minutes=10)
    assert policy.next_attempt_at(replace(job, attempts=3)) is None

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from gaia.tasks.defined_tasks.weather.protocol import (
    JOB_ID_PATTERN,
    InitiateFetchRequest,
    JobProgress,
    JobStatusResponse,
    MinerJobStatus,
    job_id_for,
)

HOTKEY = "5FREZBzaQ5VSCgD1MN28qqwKdiJ8NPMajtJ3JEnvauicHS3k"
OTHER = "5DWqm9XY94eVomkCFCQEBeEca82Cjb3eCZNdDW58u2CaUNSi"
T0 = datetime(2026, 11, 20, 6, tzinfo=UTC)


def request(**overrides: object) -> InitiateFetchRequest:
    fields: dict[str, object] = {
        "gfs_init_time": "2026-11-20T06:00:00Z",
        "expected_miner_hotkey": HOTKEY,
        "protocol_version": "2",
    }
    fields.update(overrides)
    return InitiateFetchRequest.model_validate(fields)


def test_request_parses_a_utc_cycle() -> None:
    assert request().gfs_init_time == T0


def test_other_offsets_are_converted_to_utc() -> None:
    parsed = request(gfs_init_time="2026-11-20T08:00:00+02:00")
    assert parsed.gfs_init_time == T0
    assert parsed.gfs_init_time.tzinfo == UTC


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("2026-11-20T06:00:00", "no timezone"),
        ("2026-11-20T03:00:00Z", "not a 6-hourly"),
        ("2026-11-20T06:30:00Z", "not a 6-hourly"),
        ("2026-11-20T06:00:01Z", "not a 6-hourly"),
        ("yesterday", "datetime"),
    ],
)
def test_bad_cycle_times_are_refused(value: str, reason: str) -> None:
    with pytest.raises(ValidationError, match=reason):
        request(gfs_init_time=value)


def test_unknown_fields_versions_and_hotkeys_are_refused() -> None:
    with pytest.raises(ValidationError, match="extra"):
        request(lead_hours=[6, 12])
    with pytest.raises(ValidationError, match="protocol_version"):
        request(protocol_version="1")  # a protocol v1 validator
    with pytest.raises(ValidationError, match="expected_miner_hotkey"):
        request(expected_miner_hotkey="not-a-hotkey")


def test_job_id_is_deterministic_per_miner_and_cycle() -> None:
    same = job_id_for(HOTKEY, T0)
    assert same == job_id_for(HOTKEY, T0.astimezone(timezone(timedelta(hours=-5))))
    assert same != job_id_for(OTHER, T0)
    assert same != job_id_for(HOTKEY, T0 + timedelta(hours=6))
    assert re.match(JOB_ID_PATTERN, same)


def test_status_response_ties_fields_to_status() -> None:
    job_id = job_id_for(HOTKEY, T0)
    base = {
        "job_id": job_id,
        "gfs_init_time": T0,
        "progress": JobProgress(leads_done=3, leads_total=40),
    }
    JobStatusResponse(**base, status=MinerJobStatus.INFERENCE_RUNNING)
    JobStatusResponse(**base, status=MinerJobStatus.FAILED, error="ValueError: boom")
    with pytest.raises(ValidationError, match="error is set exactly"):
        JobStatusResponse(**base, status=MinerJobStatus.FAILED)
    with pytest.raises(ValidationError, match="manifest_hash and manifest_url"):
        JobStatusResponse(**base, status=MinerJobStatus.FORECAST_READY)


def test_progress_cannot_exceed_total() -> None:
    with pytest.raises(ValidationError, match="exceeds"):
        JobProgress(leads_done=5, leads_total=4)


def test_finished_statuses() -> None:
    assert {s for s in MinerJobStatus if s.finished} == {
        MinerJobStatus.FORECAST_READY,
        MinerJobStatus.FAILED,
    }

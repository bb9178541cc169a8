"""The pure parts of the metrics: bounded failure labels, job results, refusal codes, the
health rule (hand-derived cases), and the dashboard's queries against the exported series."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from gaia.jobs.observer import JobResult, result_of
from gaia.jobs.outcomes import Invalid, NotReady, Retry, TimedOut
from gaia.jobs.policy import Resolution
from gaia.jobs.schema import JobStatus
from gaia.miner.metrics import MinerMetrics, refusal_code
from gaia.validator.metrics import DatabaseSnapshot, ValidatorMetrics, failure_class
from gaia.validator.probe import assess

NOW = datetime(2025, 3, 1, 18, tzinfo=UTC)
REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize(("reason", "label"), [
    ("late: no committed forecast by the deadline 2025-03-01T21:30:00+00:00", "late"),
    ("miner offline (connection refused)", "miner offline"),
    ("miner failed: anything the miner chose to say", "miner failed"),
    ("day-1 scoring failed (Retry: boom)", "day-1 scoring failed"),
    ("ERA5 truth for lead 24 h never arrived", "era5 truth for lead"),
    ("GFS cycle 2025-03-01 12:00 was not available", "gfs cycle"),
    ("12345 is not a word", "other"),
    (None, "other"),
])
def test_failure_class_keeps_the_leading_words_only(reason: str | None, label: str) -> None:
    assert failure_class(reason) == label


@pytest.mark.parametrize(("outcome", "status", "result"), [
    (None, JobStatus.SUCCEEDED, JobResult.SUCCEEDED),
    (Retry("x"), JobStatus.QUEUED, JobResult.RETRIED),
    (TimedOut(5.0), JobStatus.QUEUED, JobResult.TIMED_OUT),
    (NotReady(NOW, "ERA5 not out"), JobStatus.QUEUED, JobResult.NOT_READY),
    (Retry("x"), JobStatus.FAILED, JobResult.FAILED),
    (Invalid("bad"), JobStatus.FAILED, JobResult.FAILED),
])
def test_result_of(outcome, status: JobStatus, result: JobResult) -> None:
    assert result_of(outcome, Resolution(status, 1, 30.0)) is result


def test_refusal_code_reads_the_error_field_or_falls_back_to_the_status() -> None:
    assert refusal_code(401, b'{"error": "unauthenticated", "message": "m"}') == "unauthenticated"
    assert refusal_code(500, b"Internal Server Error") == "http_500"
    assert refusal_code(400, b'{"error": "not a code!"}') == "http_400"
    assert refusal_code(400, b'["error"]') == "http_400"


def snapshot(oldest_due: datetime | None) -> DatabaseSnapshot:
    return DatabaseSnapshot(jobs={}, runs={}, failures={}, oldest_due=oldest_due, taken_at=NOW)


def test_health_rule() -> None:
    long_ago, recently = NOW - timedelta(seconds=700), NOW - timedelta(seconds=10)
    cases = [  # (snapshot, last claim, healthy)
        (None, recently, False),  # database unreachable
        (snapshot(None), long_ago, True),  # nothing due: an idle worker is fine
        (snapshot(long_ago), long_ago, False),  # due and unclaimed past 600 s
        (snapshot(long_ago), recently, True),  # a backlog the worker is working through
        (snapshot(recently), long_ago, True),  # due only 10 s
    ]
    for snap, last_claim, healthy in cases:
        health = assess(snap, last_claim_at=last_claim, now=NOW, unclaimed_after_s=600.0)
        assert health.ok is healthy, (snap, last_claim)
    assert snapshot(long_ago).queue_lag_s == 700.0


def exported_names() -> set[str]:
    """Every sample name the miner's and the validator's registries can expose."""
    miner, validator = MinerMetrics(), ValidatorMetrics(lambda: NOW, scoring_job_types=frozenset())
    miner.show_job_states({})
    validator.show(snapshot(None))
    suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"),
                "gauge": ("",)}
    return {family.name + suffix
            for registry in (miner.registry, validator.registry)
            for family in registry.collect() for suffix in suffixes[family.type]}


def test_the_dashboard_queries_only_series_that_exist() -> None:
    dashboard = json.loads((REPO_ROOT / "deploy" / "grafana" / "gaia.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel.get("targets", [])
               for name in re.findall(r"gaia_[a-z0-9_]+", target["expr"])}
    assert queried, "the dashboard has no queries"
    assert queried <= exported_names(), queried - exported_names()
    assert {"gaia_validator_queue_lag_seconds", "gaia_miner_refusals_total",
            "gaia_miner_inference_seconds_bucket", "gaia_validator_response_failures"} <= queried

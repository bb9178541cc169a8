"""Registry, payload parsing, singleton keys and the job log prefix."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel

from gaia.jobs import (
    ConcurrencyLimit,
    Invalid,
    JobRegistry,
    RetryPolicy,
    describe_subject,
    singleton_key,
)
from gaia.jobs.registry import JobLogger

POLICY = RetryPolicy(1, (1,), timeout_s=1, max_timeout_s=1)


class RunPayload(BaseModel):
    run_id: int
    miner_hotkey: str


async def handler(payload, ctx):
    return None


def test_register_and_look_up():
    registry = JobRegistry()
    registry.register("weather.seed", handler, policy=POLICY, payload_model=RunPayload)
    registry.register("weather.orchestrate", handler, policy=POLICY)
    assert registry.job_types == ["weather.orchestrate", "weather.seed"]
    assert registry.policies() == {"weather.orchestrate": POLICY, "weather.seed": POLICY}
    with pytest.raises(ValueError, match="already registered"):
        registry.register("weather.seed", handler, policy=POLICY)
    with pytest.raises(KeyError, match="weather.nope"):
        registry.spec("weather.nope")


def test_payload_model_parses_and_bad_payload_is_invalid():
    registry = JobRegistry()
    registry.register("t", handler, policy=POLICY, payload_model=RunPayload)
    spec = registry.spec("t")
    assert spec.parse({"run_id": 42, "miner_hotkey": "5F"}) == RunPayload(run_id=42, miner_hotkey="5F")
    with pytest.raises(Invalid, match="bad payload for t"):
        spec.parse({"run_id": "not a number"})


def test_singleton_key_carries_the_subject():
    assert singleton_key("weather.seed", run=42) == "weather.seed:run=42"
    key = singleton_key("weather.query_miner", run=42, hotkey="5Fabc")
    assert key == "weather.query_miner:run=42:hotkey=5Fabc"
    with pytest.raises(ValueError, match="subject"):
        singleton_key("weather.seed")
    with pytest.raises(ValueError, match="no ':'"):
        singleton_key("weather.run.create", slot="2026-11-28T18:00")


def test_log_lines_name_job_type_attempt_and_subject(caplog):
    subject = describe_subject({"run_id": 42, "miner_hotkey": "5Fabc", "other": 1})
    assert subject == "run_id=42 miner_hotkey=5Fabc"
    fields = {"job_id": 7, "job_type": "weather.poll_miner", "attempt": 3, "subject": subject}
    job_log = JobLogger(logging.getLogger("test.jobs"), fields)
    with caplog.at_level(logging.INFO, logger="test.jobs"):
        job_log.info("succeeded")
    record = caplog.records[-1]
    assert record.getMessage() == "[job 7 weather.poll_miner attempt 3 run_id=42 miner_hotkey=5Fabc] succeeded"
    assert (record.job_id, record.attempt) == (7, 3)


def test_types_of_one_group_share_one_limit():
    registry = JobRegistry()
    scoring = ConcurrencyLimit("scoring", 2)
    registry.register("weather.day1_score", handler, policy=POLICY, limit=scoring)
    registry.register("weather.era5_score", handler, policy=POLICY, limit=scoring)
    registry.register("weather.poll_miner", handler, policy=POLICY)
    assert registry.limits() == {"scoring": scoring}
    assert registry.spec("weather.poll_miner").limit is None
    with pytest.raises(ValueError, match="already has limit 2"):
        registry.register("weather.other", handler, policy=POLICY,
                          limit=ConcurrencyLimit("scoring", 3))
    with pytest.raises(ValueError, match=">= 1"):
        ConcurrencyLimit("scoring", 0)

"""The outcome → next state mapping against the plan's RETRY_CONFIG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gaia.jobs import Invalid, NotReady, Retry, RetryPolicy, TimedOut, resolve
from gaia.jobs.schema import JobStatus
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob

QUERY = RETRY_CONFIG[WeatherJob.QUERY_MINER]
POLL = RETRY_CONFIG[WeatherJob.POLL_MINER]
DAY1 = RETRY_CONFIG[WeatherJob.DAY1_SCORE]
ERA5 = RETRY_CONFIG[WeatherJob.ERA5_SCORE]
LATER = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)


def run(outcome, policy, attempts=1, timeout_s=None, scale=1.0):
    return resolve(
        outcome,
        attempts=attempts,
        max_attempts=policy.max_attempts,
        timeout_s=policy.timeout_s if timeout_s is None else timeout_s,
        policy=policy,
        backoff_scale=scale,
    )


def test_plan_figures():
    assert (QUERY.max_attempts, QUERY.backoff_s) == (3, (60, 300, 900))
    assert (POLL.max_attempts, POLL.backoff_s) == (10, (300,))
    assert (DAY1.max_attempts, DAY1.backoff_s) == (3, (300, 600, 1200))
    assert (ERA5.max_attempts, ERA5.backoff_s) == (5, (3600,))
    assert not POLL.not_ready_uses_attempt and not ERA5.not_ready_uses_attempt
    assert set(RETRY_CONFIG) == set(WeatherJob)


def test_success_keeps_attempts_and_timeout():
    r = run(None, QUERY, attempts=2, timeout_s=120)
    assert (r.status, r.attempts, r.timeout_s, r.error) == (JobStatus.SUCCEEDED, 2, 120, None)


@pytest.mark.parametrize(
    ("policy", "attempt", "delay"),
    [(QUERY, 1, 60), (QUERY, 2, 300), (DAY1, 1, 300), (DAY1, 2, 600), (POLL, 7, 300), (ERA5, 4, 3600)],
)
def test_retry_waits_the_policy_backoff(policy, attempt, delay):
    r = run(Retry("connection refused"), policy, attempts=attempt)
    assert (r.status, r.attempts, r.delay_s, r.run_at) == (JobStatus.QUEUED, attempt, delay, None)
    assert r.error == "connection refused"


def test_backoff_scale_shrinks_policy_delays_only():
    assert run(Retry("x"), QUERY, attempts=2, scale=0.01).delay_s == pytest.approx(3.0)
    assert run(Retry("x", delay=42), QUERY, attempts=2, scale=0.01).delay_s == 42


def test_retry_on_last_attempt_fails_with_reason():
    r = run(Retry("503 from miner"), QUERY, attempts=3)
    assert r.status is JobStatus.FAILED
    assert r.error == "gave up after 3 attempts: 503 from miner"


def test_timeout_doubles_the_next_timeout_up_to_the_cap():
    assert run(TimedOut(60), QUERY, attempts=1, timeout_s=60).timeout_s == 120
    assert run(TimedOut(240), QUERY, attempts=2, timeout_s=240).timeout_s == QUERY.max_timeout_s
    r = run(TimedOut(60), QUERY, attempts=1, timeout_s=60)
    assert (r.status, r.delay_s) == (JobStatus.QUEUED, 60)
    assert "timed out after 60 s" in r.error


def test_not_ready_uses_an_attempt_where_the_policy_says_so():
    counting = RetryPolicy(10, (300,), timeout_s=30, max_timeout_s=120)
    r = run(NotReady(LATER, "inference running"), counting, attempts=4)
    assert (r.status, r.attempts, r.run_at) == (JobStatus.QUEUED, 4, LATER)
    last = run(NotReady(LATER, "inference running"), counting, attempts=10)
    assert last.status is JobStatus.FAILED
    assert last.error == "still not ready after 10 attempts: inference running"


def test_not_ready_does_not_use_an_attempt_for_era5_score():
    r = run(NotReady(LATER, "ERA5 not published"), ERA5, attempts=5)
    assert (r.status, r.attempts, r.run_at) == (JobStatus.QUEUED, 4, LATER)


def test_invalid_fails_at_once():
    r = run(Invalid("hash mismatch"), DAY1, attempts=1)
    assert (r.status, r.attempts, r.error) == (JobStatus.FAILED, 1, "invalid: hash mismatch")


def test_short_backoff_tuple_repeats_its_last_delay():
    policy = RetryPolicy(5, (1, 2), timeout_s=1, max_timeout_s=1)
    assert [policy.delay_after(n) for n in range(1, 5)] == [1, 2, 2, 2]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0, "backoff_s": (1,), "timeout_s": 1, "max_timeout_s": 1},
        {"max_attempts": 1, "backoff_s": (), "timeout_s": 1, "max_timeout_s": 1},
        {"max_attempts": 1, "backoff_s": (-1,), "timeout_s": 1, "max_timeout_s": 1},
        {"max_attempts": 1, "backoff_s": (1,), "timeout_s": 2, "max_timeout_s": 1},
    ],
)
def test_bad_policies_are_refused(kwargs):
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_outcomes_refuse_bad_arguments():
    with pytest.raises(ValueError, match="timezone-aware"):
        NotReady(datetime(2026, 1, 1), "naive")
    with pytest.raises(ValueError, match=">= 0"):
        Retry("x", delay=-1)
    assert NotReady(LATER - timedelta(hours=1), "r").reason == "r"


def test_not_ready_after_progress_starts_the_next_wait_with_fresh_attempts():
    # attempt 4 follows three failed truth reads; it scored a lead, so the wait for the next
    # lead starts at attempts 0: its first run is attempt 1 of 5 again
    r = run(NotReady(LATER, "next lead not covered", progressed=True), ERA5, attempts=4)
    assert (r.status, r.attempts, r.run_at) == (JobStatus.QUEUED, 0, LATER)
    # also for a policy whose waits use attempts: progress on the last attempt is no failure
    counting = RetryPolicy(3, (60,), timeout_s=60, max_timeout_s=60)
    last = run(NotReady(LATER, "more to do", progressed=True), counting, attempts=3)
    assert (last.status, last.attempts) == (JobStatus.QUEUED, 0)
    plain = run(NotReady(LATER, "next lead not covered"), ERA5, attempts=4)
    assert plain.attempts == 3

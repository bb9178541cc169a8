"""The weather pipeline's job types and their retry policies (the plan's RETRY_CONFIG).

The generic queue (:mod:`gaia.jobs`) knows neither: :mod:`.workers` registers each type with
its policy in the worker's registry and hands ``all_policies()`` to the queue.

The per-miner figures are the plan's. ``max_attempts`` counts runs of the handler, so a
3-attempt policy waits after attempts 1 and 2 only: query_miner's third delay (900 s) and
day1_score's (1200 s) apply only if an operator raises ``max_attempts`` on a job.

Miner calls: a call's timeout is derived from the job's current timeout, and a miner that
does not answer in time is ``TimedOut``, so each such attempt doubles the next one's
(query_miner 60 s up to 300 s, poll_miner 30 s up to 120 s). A poll of a miner that answers
"still running" is ``NotReady`` and uses no attempt: polls go on until the run's commit
deadline, and poll_miner's 10 attempts count only polls that fail (timeout, refused
connection, 5xx, 401/403/429).

Singletons (our choice, not the plan's):

- ``weather.run.create``: database work and a metagraph read; 5 attempts, 60/300/900 s, so a
  chain outage of ~20 min does not cost the day's run.
- ``weather.seed``: downloads the day-1 reference (minutes); 6 attempts, 300/600/1200/1800 s
  (about 1.5 h of retries), handler timeout 30 min growing to 2 h. GFS not yet published is
  nobody's fault, so ``NotReady`` does not use an attempt.
- ``weather.orchestrate``: the per-miner fan-out, all database work; 5 attempts, 30/120/300 s.

``weather.run.create`` and ``weather.orchestrate`` wait with ``NotReady`` while the validator
is paused (``gaia.validator.pause``); a pause is nobody's failure, so it uses no attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType
from typing import Final

from gaia.jobs.policy import RetryPolicy


class WeatherJob(StrEnum):
    RUN_CREATE = "weather.run.create"
    SEED = "weather.seed"
    ORCHESTRATE = "weather.orchestrate"
    QUERY_MINER = "weather.query_miner"
    POLL_MINER = "weather.poll_miner"
    DAY1_SCORE = "weather.day1_score"
    ERA5_SCORE = "weather.era5_score"

    @property
    def step(self) -> str:
        """What a response failed by this job records as ``failed_step`` (``poll_miner``)."""
        return self.removeprefix("weather.")


RETRY_CONFIG: Final[Mapping[str, RetryPolicy]] = MappingProxyType(
    {
        WeatherJob.RUN_CREATE: RetryPolicy(
            5, (60, 300, 900), timeout_s=120, max_timeout_s=600, not_ready_uses_attempt=False,
        ),
        WeatherJob.SEED: RetryPolicy(
            6, (300, 600, 1200, 1800), timeout_s=1800, max_timeout_s=7200,
            not_ready_uses_attempt=False,
        ),
        WeatherJob.ORCHESTRATE: RetryPolicy(
            5, (30, 120, 300), timeout_s=300, max_timeout_s=1200, not_ready_uses_attempt=False,
        ),
        WeatherJob.QUERY_MINER: RetryPolicy(3, (60, 300, 900), timeout_s=60, max_timeout_s=300),
        WeatherJob.POLL_MINER: RetryPolicy(
            10, (300,), timeout_s=30, max_timeout_s=120, not_ready_uses_attempt=False
        ),
        WeatherJob.DAY1_SCORE: RetryPolicy(3, (300, 600, 1200), timeout_s=300, max_timeout_s=1200),
        WeatherJob.ERA5_SCORE: RetryPolicy(
            5, (3600,), timeout_s=900, max_timeout_s=3600, not_ready_uses_attempt=False
        ),
    }
)

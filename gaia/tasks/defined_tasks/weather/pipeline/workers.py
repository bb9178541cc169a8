"""Job type → handler, retry policy and give-up hook, for the validator's workers.

The retry policies are the plan's ``RETRY_CONFIG`` (:mod:`.job_types`), handed to the
generic worker through its registry; the handlers get their collaborators bound here, so a
handler's only inputs are its payload and its job context.

Day-1 and ERA5 scoring share the worker process's scoring processes, so they share one
concurrency limit of that many (:data:`SCORING_GROUP`): a worker claims a scoring job only
when a scoring process is free, and the miner-facing jobs never wait behind scoring jobs
queued for a process. With no scoring processes (scoring in the worker itself) the limit
is one: each scoring task holds a whole forecast's fields in memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from gaia.jobs.policy import RetryPolicy
from gaia.jobs.registry import ConcurrencyLimit, JobRegistry
from gaia.tasks.defined_tasks.weather.pipeline import orchestrator
from gaia.tasks.defined_tasks.weather.pipeline.context import PipelineContext
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG, WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import (
    PeriodicPayload,
    ResponsePayload,
    RunCreatePayload,
    RunPayload,
)
from gaia.tasks.defined_tasks.weather.pipeline.responses import give_up_as
from gaia.tasks.defined_tasks.weather.pipeline.steps import (
    day1_step,
    era5_step,
    poll_miner_step,
    query_miner_step,
)
from gaia.validator import periodic, run_retention

SCORING_GROUP = "scoring"
SCORING_JOBS = frozenset({WeatherJob.DAY1_SCORE, WeatherJob.ERA5_SCORE})


def all_policies() -> Mapping[str, RetryPolicy]:
    return {**RETRY_CONFIG, **periodic.PERIODIC_POLICIES, **run_retention.POLICIES}


def scoring_limit(scoring_processes: int) -> ConcurrencyLimit:
    """Scoring jobs one worker process runs at once, for its ``scoring_processes``."""
    return ConcurrencyLimit(SCORING_GROUP, max(1, scoring_processes))


def build_registry(
    ctx: PipelineContext, periodic_ctx: periodic.PeriodicContext, *, scoring_processes: int,
    retention: run_retention.RetentionContext,
) -> JobRegistry:
    """``scoring_processes``: the scoring service's processes (resolved, 0: in-process)."""
    registry = JobRegistry()
    _register_run_steps(registry, ctx)
    _register_miner_steps(registry, ctx, scoring_limit(scoring_processes))
    for job_type, handler in (
        (periodic.METAGRAPH_SYNC, periodic.sync_metagraph),
        (periodic.SET_WEIGHTS, periodic.submit_weights),
    ):
        registry.register(job_type, partial(handler, periodic_ctx),
                          policy=periodic.PERIODIC_POLICIES[job_type],
                          payload_model=PeriodicPayload)
    registry.register(run_retention.RETENTION, partial(run_retention.retain, retention),
                      policy=run_retention.POLICIES[run_retention.RETENTION],
                      payload_model=PeriodicPayload)
    return registry


def _register_run_steps(registry: JobRegistry, ctx: PipelineContext) -> None:
    registry.register(WeatherJob.RUN_CREATE, partial(orchestrator.create_run, ctx),
                      policy=RETRY_CONFIG[WeatherJob.RUN_CREATE], payload_model=RunCreatePayload)
    for job_type, handler in (
        (WeatherJob.SEED, orchestrator.seed_run),
        (WeatherJob.ORCHESTRATE, orchestrator.orchestrate_run),
    ):
        registry.register(job_type, partial(handler, ctx), policy=RETRY_CONFIG[job_type],
                          payload_model=RunPayload, on_give_up=orchestrator.run_failed)


def _register_miner_steps(
    registry: JobRegistry, ctx: PipelineContext, scoring: ConcurrencyLimit,
) -> None:
    steps = (
        (WeatherJob.QUERY_MINER, query_miner_step.query_miner, "miner offline"),
        (WeatherJob.POLL_MINER, poll_miner_step.poll_miner, "no forecast in time"),
        (WeatherJob.DAY1_SCORE, day1_step.score_day1, "day-1 scoring failed"),
        (WeatherJob.ERA5_SCORE, era5_step.score_era5, "ERA5 scoring failed"),
    )
    for job_type, handler, summary in steps:
        give_up = give_up_as(job_type.step, summary)
        if job_type is WeatherJob.ERA5_SCORE:
            give_up = era5_step.give_up_withdrawn(ctx, give_up)
        registry.register(job_type, partial(handler, ctx), policy=RETRY_CONFIG[job_type],
                          payload_model=ResponsePayload, on_give_up=give_up,
                          limit=scoring if job_type in SCORING_JOBS else None)

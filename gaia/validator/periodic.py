"""The validator's periodic jobs: metagraph sync and weight submission.

The scheduler enqueues each once per slot (``validator.metagraph_sync:<slot>``). Chain
trouble becomes a typed outcome with the chain's own words, never a crash:

- unreachable chain, or a refusal that may pass (commit-reveal switched under us) → ``Retry``
  with the policy's backoff;
- the weights rate limit → ``Retry`` after exactly the wait the chain names;
- a hotkey not registered on the subnet, or a weights vector this subnet does not accept →
  ``Invalid``: this slot's job fails at once (the next slot tries again) and says why.

Weights are never skipped: with no positive score the job submits the fallback (the whole
weight on ``validator.fallback_weight_uid``) and logs why (:func:`weights_to_submit`). A
pause (:mod:`gaia.validator.pause`) stops neither job.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.chain.client import ChainClient, ChainError, ChainRefused, InvalidWeights, Refusal
from gaia.jobs.outcomes import Invalid, Retry
from gaia.jobs.policy import RetryPolicy
from gaia.jobs.registry import JobContext
from gaia.tasks.defined_tasks.weather.pipeline.payloads import PeriodicPayload
from gaia.validator.database import validator_database_manager as db
from gaia.validator.weights import version_key, weights_to_submit

log = logging.getLogger(__name__)

METAGRAPH_SYNC = "validator.metagraph_sync"
SET_WEIGHTS = "validator.set_weights"

PERIODIC_POLICIES = {
    METAGRAPH_SYNC: RetryPolicy(3, (30, 120), timeout_s=120, max_timeout_s=600),
    SET_WEIGHTS: RetryPolicy(3, (60, 300), timeout_s=300, max_timeout_s=900),
}


def package_version_key() -> int:
    try:
        return version_key(version("gaia-weather"))
    except PackageNotFoundError:
        return 0


@dataclass(frozen=True)
class PeriodicContext:
    session_factory: async_sessionmaker[AsyncSession]
    chain: ChainClient
    weights_window: int
    fallback_uid: int  # validator.fallback_weight_uid


async def sync_metagraph(ctx: PeriodicContext, payload: PeriodicPayload, job: JobContext) -> None:
    try:
        neurons = await ctx.chain.metagraph()
    except ChainError as error:
        raise Retry(f"metagraph: {error}") from error
    async with ctx.session_factory.begin() as session:
        upserted, removed = await db.sync_miners(session, neurons)
    job.log.info("metagraph synced: %d neurons, %d hotkeys gone", upserted, removed)


async def submit_weights(ctx: PeriodicContext, payload: PeriodicPayload, job: JobContext) -> None:
    async with ctx.session_factory() as session:
        runs = await db.latest_scored_runs(session, ctx.weights_window)
        registered = await db.registrations(session)
    chosen = weights_to_submit(runs, registered, window=ctx.weights_window,
                               fallback_uid=ctx.fallback_uid)
    if chosen.fallback_reason is not None:
        job.log.warning("fallback weights: %s", chosen.fallback_reason)
    vector = chosen.vector
    try:
        confirmation = await ctx.chain.set_weights(
            vector.uids, vector.weights, package_version_key()
        )
    except InvalidWeights as error:
        raise Invalid(f"weights vector cannot be submitted: {error}") from error
    except ChainRefused as refusal:
        raise weights_refused(refusal) from refusal
    except ChainError as error:
        raise Retry(f"set_weights: {error}") from error
    sent = ", ".join(f"{uid}:{w:.4f}" for uid, w in zip(vector.uids, vector.weights, strict=True))
    source = "the fallback" if chosen.fallback_reason else f"{len(runs)} runs"
    job.log.info("weights from %s %s: %s", source, confirmation, sent)


def weights_refused(refusal: ChainRefused) -> Invalid | Retry:
    """The job outcome of a chain's refusal of our weights."""
    if refusal.refusal in (Refusal.NOT_REGISTERED, Refusal.INVALID):
        return Invalid(str(refusal))
    if refusal.refusal is Refusal.RATE_LIMITED and refusal.retry_in_s is not None:
        return Retry(str(refusal), delay=refusal.retry_in_s)
    return Retry(str(refusal))

"""Run and miner-response state machines (DESIGN.md section 3) and the one transition function.

Every status change of a miner response goes through :func:`transition_response`: it checks
:data:`VALID_TRANSITIONS` and performs a conditional ``UPDATE … WHERE status = :from`` in the
caller's transaction, so the change and any jobs the caller enqueues commit together. An illegal
transition, or one that lost a race (the row is no longer in ``from``), raises and changes
nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from enum import StrEnum
from typing import Any, Final

from sqlalchemy import func, update
from sqlalchemy.ext.asyncio import AsyncSession

log = logging.getLogger(__name__)


class RunStatus(StrEnum):
    CREATED = "created"
    GFS_DOWNLOADING = "gfs_downloading"
    GFS_READY = "gfs_ready"
    QUERYING_MINERS = "querying_miners"
    SCORING_DAY1 = "scoring_day1"
    AWAITING_ERA5 = "awaiting_era5"
    SCORING_ERA5 = "scoring_era5"
    COMPLETED = "completed"
    ERROR = "error"


class RunMode(StrEnum):
    LIVE = "live"
    HINDCAST = "hindcast"


class MinerResponseStatus(StrEnum):
    CREATED = "created"
    FETCH_INITIATED = "fetch_initiated"
    INFERENCE_RUNNING = "inference_running"
    FORECAST_READY = "forecast_ready"
    DAY1_SCORING = "day1_scoring"
    DAY1_SCORED = "day1_scored"
    ERA5_SCORING = "era5_scoring"
    ERA5_SCORED = "era5_scored"
    FAILED = "failed"


_S = MinerResponseStatus

VALID_TRANSITIONS: Final[Mapping[MinerResponseStatus, frozenset[MinerResponseStatus]]] = {
    _S.CREATED: frozenset({_S.FETCH_INITIATED, _S.FAILED}),
    _S.FETCH_INITIATED: frozenset({_S.INFERENCE_RUNNING, _S.FAILED}),
    _S.INFERENCE_RUNNING: frozenset({_S.FORECAST_READY, _S.FAILED}),
    _S.FORECAST_READY: frozenset({_S.DAY1_SCORING, _S.FAILED}),
    _S.DAY1_SCORING: frozenset({_S.DAY1_SCORED, _S.FAILED}),
    _S.DAY1_SCORED: frozenset({_S.ERA5_SCORING}),
    _S.ERA5_SCORING: frozenset({_S.ERA5_SCORED, _S.FAILED}),
    _S.ERA5_SCORED: frozenset(),
    _S.FAILED: frozenset(),
}

TERMINAL_RESPONSE_STATUSES: Final = frozenset(s for s, nxt in VALID_TRANSITIONS.items() if not nxt)


class TransitionError(Exception):
    """Base class: the requested status change did not happen."""


class IllegalTransition(TransitionError):
    def __init__(self, current: MinerResponseStatus, target: MinerResponseStatus) -> None:
        super().__init__(f"illegal transition {current} -> {target}")
        self.current = current
        self.target = target


class LostRace(TransitionError):
    """The row was not in the expected status any more (or does not exist)."""

    def __init__(self, response_id: int, expected: MinerResponseStatus) -> None:
        super().__init__(f"response {response_id} is no longer {expected}")
        self.response_id = response_id
        self.expected = expected


def is_allowed(current: MinerResponseStatus, target: MinerResponseStatus) -> bool:
    return target in VALID_TRANSITIONS[current]


async def transition_response(
    session: AsyncSession,
    response_id: int,
    current: MinerResponseStatus,
    target: MinerResponseStatus,
    **fields: Any,
) -> None:
    """Move one response from ``current`` to ``target`` inside the caller's transaction.

    ``fields`` are further columns to set in the same UPDATE (``manifest_hash=…``). Moving to
    ``failed`` requires ``failure_reason`` and ``failed_step``.
    """
    from gaia.database.validator_schema import WeatherMinerResponse

    if not is_allowed(current, target):
        log.error("refused transition of response %s: %s -> %s", response_id, current, target)
        raise IllegalTransition(current, target)
    if target is _S.FAILED and not (fields.get("failure_reason") and fields.get("failed_step")):
        raise ValueError("a transition to failed needs failure_reason and failed_step")
    table = WeatherMinerResponse.__table__
    result = await session.execute(
        update(table)
        .where(table.c.id == response_id, table.c.status == current)
        .values(status=target, updated_at=func.now(), **fields)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("lost race on response %s: expected %s, wanted %s", response_id, current, target)
        raise LostRace(response_id, current)

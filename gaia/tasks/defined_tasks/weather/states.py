"""Run and miner-response state machines (docs/ARCHITECTURE.md, "State machines"), as data
and pure functions.

:data:`VALID_TRANSITIONS` is the response machine exactly as the plan fixes it.
:data:`RUN_TRANSITIONS` is the run's: the steps walk it one status at a time until the fan-out
(``created → gfs_downloading → gfs_ready → querying_miners``); from then on the run's status
is the roll-up of its responses (:func:`rolled_up_run_status`), which only moves forward along
the plan's chain and may pass over a phase no miner is in (every miner failing while the run
queries them completes it). ``error`` is reachable from every status that is not terminal.

Nothing here touches the database: the conditional updates that apply these tables live with
the other queries (``gaia.validator.database.validator_database_manager``).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from enum import StrEnum
from typing import Final


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
_R = RunStatus

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

RUN_CHAIN: Final = (_R.CREATED, _R.GFS_DOWNLOADING, _R.GFS_READY, _R.QUERYING_MINERS,
                    _R.SCORING_DAY1, _R.AWAITING_ERA5, _R.SCORING_ERA5, _R.COMPLETED)
"""The plan's order of a run's statuses (``error`` stands outside it)."""

BEFORE_FAN_OUT_RUN_STATUSES: Final = frozenset({_R.CREATED, _R.GFS_DOWNLOADING, _R.GFS_READY})
"""Statuses the run-level steps move one at a time, before any response exists."""

ROLLED_UP_RUN_STATUSES: Final = frozenset({
    _R.QUERYING_MINERS, _R.SCORING_DAY1, _R.AWAITING_ERA5, _R.SCORING_ERA5,
})
"""Statuses of a fanned-out run that is not finished: its responses decide the next one."""

TERMINAL_RUN_STATUSES: Final = frozenset({_R.COMPLETED, _R.ERROR})


def _run_successors(status: RunStatus) -> frozenset[RunStatus]:
    if status in TERMINAL_RUN_STATUSES:
        return frozenset()
    later = RUN_CHAIN[RUN_CHAIN.index(status) + 1:]
    if status in ROLLED_UP_RUN_STATUSES:
        return frozenset({*later, _R.ERROR})
    return frozenset({later[0], _R.ERROR})


RUN_TRANSITIONS: Final[Mapping[RunStatus, frozenset[RunStatus]]] = {
    status: _run_successors(status) for status in RunStatus
}


class TransitionError(Exception):
    """Base class: the requested status change did not happen."""


class IllegalTransition(TransitionError):
    def __init__(self, current: StrEnum, target: StrEnum) -> None:
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


def run_may_move(current: RunStatus, target: RunStatus) -> bool:
    return target in RUN_TRANSITIONS[current]


def run_sources(
    target: RunStatus, within: Collection[RunStatus] | None = None
) -> frozenset[RunStatus]:
    """The statuses :data:`RUN_TRANSITIONS` lets a run leave for ``target`` (only those in
    ``within`` when given). Raises ``ValueError`` when there are none: the move is illegal."""
    sources = frozenset(s for s, nxt in RUN_TRANSITIONS.items()
                        if target in nxt and (within is None or s in within))
    if not sources:
        among = "" if within is None else f" among {sorted(within)}"
        raise ValueError(f"no run status{among} may move to {target}")
    return sources


def rolled_up_run_status(statuses: Iterable[MinerResponseStatus]) -> RunStatus:
    """The run status a mix of response statuses implies."""
    present = set(statuses)
    if not present or present <= TERMINAL_RESPONSE_STATUSES:
        return _R.COMPLETED
    if present & {_S.CREATED, _S.FETCH_INITIATED, _S.INFERENCE_RUNNING}:
        if present & {_S.FORECAST_READY, _S.DAY1_SCORING, _S.DAY1_SCORED, _S.ERA5_SCORING,
                      _S.ERA5_SCORED}:
            return _R.SCORING_DAY1
        return _R.QUERYING_MINERS
    if present & {_S.FORECAST_READY, _S.DAY1_SCORING}:
        return _R.SCORING_DAY1
    if _S.ERA5_SCORING in present:
        return _R.SCORING_ERA5
    return _R.AWAITING_ERA5


def run_status_after(current: RunStatus, statuses: Iterable[MinerResponseStatus]) -> RunStatus:
    """The roll-up rule: the status a run in ``current`` takes once its responses are in
    ``statuses``. Only a fanned-out, unfinished run follows its responses, and only forward
    (a response failing never takes the run back to an earlier phase)."""
    if current not in ROLLED_UP_RUN_STATUSES:
        return current
    rolled = rolled_up_run_status(statuses)
    return rolled if run_may_move(current, rolled) else current

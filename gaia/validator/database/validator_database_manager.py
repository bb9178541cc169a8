"""Queries on runs, responses, miners and scores. Every function works inside the caller's
session and transaction, so a step's writes and the jobs it enqueues commit together.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Select, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.chain.client import Neuron
from gaia.database.validator_schema import (
    Miner,
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.tasks.defined_tasks.weather.scoring.day1 import Day1Verdict
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import (
    ROLLED_UP_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    IllegalTransition,
    LostRace,
    MinerResponseStatus,
    RunMode,
    RunStatus,
    is_allowed,
    run_sources,
    run_status_after,
)
from gaia.validator.eligibility import Eligibility
from gaia.validator.weights import Registration, RunScores

log = logging.getLogger(__name__)
S = MinerResponseStatus
SCORE_ROWS_PER_STATEMENT = 2000  # 9 parameters a row; PostgreSQL allows 32767 per statement


@dataclass(frozen=True)
class ResponseTarget:
    """One response row with what a step needs to reach its miner."""

    response_id: int
    run_id: int
    hotkey: str
    status: MinerResponseStatus
    miner_job_id: str | None
    manifest_hash: str | None
    ip: str | None
    port: int | None

    @property
    def base_url(self) -> str:
        if not self.ip or not self.port:
            raise LookupError(f"miner {self.hotkey} serves no axon")
        host = f"[{self.ip}]" if ":" in self.ip else self.ip
        return f"http://{host}:{self.port}"


async def create_run(
    session: AsyncSession, init_time: datetime, mode: RunMode, commit_deadline: datetime,
    *, grid_deg: float,
) -> tuple[int, bool]:
    """The run for (init time, mode): ``(id, True)`` when this call created it. ``grid_deg``:
    the grid its commitments are checked against (an existing run keeps its own)."""
    created = await session.scalar(
        insert(WeatherForecastRun)
        .values(gfs_init_time=init_time, mode=mode, commit_deadline=commit_deadline,
                grid_deg=grid_deg)
        .on_conflict_do_nothing(constraint="uq_runs_init_mode")
        .returning(WeatherForecastRun.id)
    )
    if created is not None:
        return created, True
    existing = await session.scalar(
        select(WeatherForecastRun.id).where(
            WeatherForecastRun.gfs_init_time == init_time, WeatherForecastRun.mode == mode
        )
    )
    if existing is None:
        raise LookupError(f"run for {init_time} ({mode}) vanished during creation")
    return existing, False


async def get_run(session: AsyncSession, run_id: int) -> WeatherForecastRun:
    run = await session.get(WeatherForecastRun, run_id)
    if run is None:
        raise LookupError(f"no run {run_id}")
    return run


async def run_exists(session: AsyncSession, init_time: datetime, mode: RunMode) -> bool:
    found = await session.scalar(
        select(WeatherForecastRun.id).where(
            WeatherForecastRun.gfs_init_time == init_time, WeatherForecastRun.mode == mode
        )
    )
    return found is not None


async def transition_run(
    session: AsyncSession,
    run_id: int,
    target: RunStatus,
    *,
    within: Collection[RunStatus] | None = None,
    error: str | None = None,
) -> bool:
    """Move a run to ``target`` from any status ``RUN_TRANSITIONS`` allows (narrowed to
    ``within``), with a conditional UPDATE; False when the run was in none of them."""
    return await _set_run_status(session, run_id, run_sources(target, within), target, error)


async def admin_override_run(
    session: AsyncSession,
    run_id: int,
    allowed_from: Collection[RunStatus],
    target: RunStatus,
    *,
    error: str | None = None,
) -> bool:
    """An operator's move of a run outside ``RUN_TRANSITIONS`` (requeue, reseed): a
    conditional UPDATE from ``allowed_from``; False when the run was in none of them."""
    log.warning("admin override of run %s to %s (from any of %s)", run_id, target,
                sorted(allowed_from))
    return await _set_run_status(session, run_id, allowed_from, target, error)


async def _set_run_status(
    session: AsyncSession, run_id: int, allowed_from: Collection[RunStatus], to: RunStatus,
    error: str | None,
) -> bool:
    values: dict[str, object] = {"status": to, "updated_at": func.now()}
    if error is not None:
        values["error"] = error
    if to in TERMINAL_RUN_STATUSES:
        values["completed_at"] = func.now()
    result = await session.execute(
        update(WeatherForecastRun)
        .where(WeatherForecastRun.id == run_id, WeatherForecastRun.status.in_(list(allowed_from)))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def transition_response(
    session: AsyncSession,
    response_id: int,
    current: MinerResponseStatus,
    target: MinerResponseStatus,
    **fields: object,
) -> None:
    """Move one response from ``current`` to ``target`` inside the caller's transaction, with
    ``UPDATE … WHERE status = current``: :class:`IllegalTransition` when ``VALID_TRANSITIONS``
    refuses it, :class:`LostRace` when the row is no longer in ``current``; either way the
    row is unchanged.

    ``fields`` are further columns to set in the same UPDATE (``manifest_hash=…``). Moving to
    ``failed`` requires ``failure_reason`` and ``failed_step``.
    """
    if not is_allowed(current, target):
        log.error("refused transition of response %s: %s -> %s", response_id, current, target)
        raise IllegalTransition(current, target)
    if target is S.FAILED and not (fields.get("failure_reason") and fields.get("failed_step")):
        raise ValueError("a transition to failed needs failure_reason and failed_step")
    result = await session.execute(
        update(WeatherMinerResponse)
        .where(WeatherMinerResponse.id == response_id, WeatherMinerResponse.status == current)
        .values(status=target, updated_at=func.now(), **fields)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        log.warning("lost race on response %s: expected %s, wanted %s", response_id, current, target)
        raise LostRace(response_id, current)


async def eligible_miners(session: AsyncSession, rule: Eligibility) -> list[Miner]:
    """The miners this validator queries, by uid."""
    rows = await session.scalars(select(Miner).order_by(Miner.uid))
    return [miner for miner in rows if rule.would_query(miner)]


async def create_responses(session: AsyncSession, run_id: int, miners: Sequence[Miner]) -> None:
    if not miners:
        return
    await session.execute(
        insert(WeatherMinerResponse)
        .values([{"run_id": run_id, "miner_hotkey": m.hotkey, "miner_uid": m.uid} for m in miners])
        .on_conflict_do_nothing(constraint="uq_responses_run_hotkey")
    )


async def responses_of_run(
    session: AsyncSession, run_id: int
) -> list[tuple[int, str, MinerResponseStatus]]:
    rows = await session.execute(
        select(WeatherMinerResponse.id, WeatherMinerResponse.miner_hotkey,
               WeatherMinerResponse.status)
        .where(WeatherMinerResponse.run_id == run_id)
        .order_by(WeatherMinerResponse.id)
    )
    return [(r.id, r.miner_hotkey, r.status) for r in rows]


async def response_target(session: AsyncSession, response_id: int) -> ResponseTarget:
    row = (
        await session.execute(
            select(WeatherMinerResponse, Miner.ip, Miner.port)
            .outerjoin(Miner, Miner.hotkey == WeatherMinerResponse.miner_hotkey)
            .where(WeatherMinerResponse.id == response_id)
        )
    ).first()
    if row is None:
        raise LookupError(f"no response {response_id}")
    response = row[0]
    return ResponseTarget(
        response_id=response.id,
        run_id=response.run_id,
        hotkey=response.miner_hotkey,
        status=response.status,
        miner_job_id=response.miner_job_id,
        manifest_hash=response.manifest_hash,
        ip=row.ip,
        port=row.port,
    )


async def store_scores(
    session: AsyncSession, run_id: int, hotkey: str, records: Iterable[ComponentRecord],
) -> int:
    """Upsert score components on their natural key; returns how many were written."""
    rows = [
        {
            "run_id": run_id,
            "miner_hotkey": hotkey,
            "kind": r.kind,
            "variable": r.variable,
            "level": r.level,
            "lead_hours": r.lead_hours,
            "metric": r.metric.value,
            "value": r.value,
        }
        for r in records
    ]
    for start in range(0, len(rows), SCORE_ROWS_PER_STATEMENT):
        statement = insert(WeatherMinerScore).values(rows[start:start + SCORE_ROWS_PER_STATEMENT])
        await session.execute(
            statement.on_conflict_do_update(
                constraint="uq_scores_component",
                set_={"value": statement.excluded.value},
            )
        )
    return len(rows)


async def scores_of(
    session: AsyncSession, run_id: int, hotkey: str, kind: ScoreKind
) -> list[WeatherMinerScore]:
    rows = await session.scalars(
        select(WeatherMinerScore).where(
            WeatherMinerScore.run_id == run_id,
            WeatherMinerScore.miner_hotkey == hotkey,
            WeatherMinerScore.kind == kind,
        )
    )
    return list(rows)


def verdict_columns(verdict: Day1Verdict) -> dict[str, object]:
    """The response columns that hold ``verdict``, for the move to ``day1_scored``."""
    return {"day1_score": verdict.score, "day1_passed": verdict.passed,
            "day1_clone": verdict.clone}


async def day1_verdict(session: AsyncSession, run_id: int, hotkey: str) -> Day1Verdict:
    """The stored day-1 verdict of a response; LookupError before day-1 is scored."""
    row = (await session.execute(
        select(WeatherMinerResponse.day1_score, WeatherMinerResponse.day1_passed,
               WeatherMinerResponse.day1_clone)
        .where(WeatherMinerResponse.run_id == run_id,
               WeatherMinerResponse.miner_hotkey == hotkey))).first()
    if row is None or row.day1_score is None:
        raise LookupError(f"no day-1 verdict for {hotkey} in run {run_id}")
    return Day1Verdict(row.day1_score, row.day1_passed, row.day1_clone)


def _stored_value(value: float | None) -> float:
    """A score row's value; rows are written from ``ComponentRecord``s, which hold no NULLs."""
    if value is None:
        raise ValueError("a stored score row has no value")
    return float(value)


async def metric_rows(
    session: AsyncSession, run_id: int, hotkey: str, kind: ScoreKind, metric: Metric,
) -> list[tuple[str, int, int, float]]:
    """(variable, level, lead hours, value) of one metric of one kind: a roll-up reads only
    the skills, not every component of every lead."""
    rows = await session.execute(
        select(WeatherMinerScore.variable, WeatherMinerScore.level, WeatherMinerScore.lead_hours,
               WeatherMinerScore.value)
        .where(WeatherMinerScore.run_id == run_id, WeatherMinerScore.miner_hotkey == hotkey,
               WeatherMinerScore.kind == kind, WeatherMinerScore.metric == metric.value))
    return [(variable, level, lead, _stored_value(value)) for variable, level, lead, value in rows]


async def scored_leads(session: AsyncSession, run_id: int, hotkey: str, kind: ScoreKind) -> set[int]:
    rows = await session.scalars(
        select(WeatherMinerScore.lead_hours).distinct()
        .where(WeatherMinerScore.run_id == run_id, WeatherMinerScore.miner_hotkey == hotkey,
               WeatherMinerScore.kind == kind))
    return set(rows)


DAY1_OVER_RUN_STATUSES = frozenset({
    RunStatus.AWAITING_ERA5, RunStatus.SCORING_ERA5, RunStatus.COMPLETED,
})


async def refresh_run_status(session: AsyncSession, run_id: int) -> RunStatus:
    """Recompute a fanned-out run's status from its responses (the run row is locked first,
    so concurrent steps of one run serialise here). Runs before fan-out or already finished
    are left as they are."""
    current = await session.scalar(
        select(WeatherForecastRun.status)
        .where(WeatherForecastRun.id == run_id)
        # FOR NO KEY UPDATE: it must not wait on the key-share locks that inserting scores
        # and responses (foreign keys to the run) take, or two steps of a run deadlock.
        .with_for_update(key_share=True)
    )
    if current is None:
        raise LookupError(f"no run {run_id}")
    if current not in ROLLED_UP_RUN_STATUSES:
        return current
    target = run_status_after(current, (s for _, _, s in await responses_of_run(session, run_id)))
    if target != current:
        await transition_run(session, run_id, target, within={current})
    return target


async def sync_miners(session: AsyncSession, neurons: Sequence[Neuron]) -> tuple[int, int]:
    """Make the miners table the metagraph: upsert by hotkey, drop hotkeys that left.

    A UID that changed hands loses its old hotkey's row (the uid is unique), and the new
    hotkey starts with a fresh registration time and nothing else. Returns (upserted, removed).
    """
    hotkeys = [n.hotkey for n in neurons]
    removed = await session.execute(delete(Miner).where(Miner.hotkey.not_in(hotkeys)))
    for neuron in neurons:
        await session.execute(
            delete(Miner).where(Miner.uid == neuron.uid, Miner.hotkey != neuron.hotkey)
        )
    if neurons:
        statement = insert(Miner).values([_miner_row(n) for n in neurons])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=[Miner.hotkey],
                set_={
                    "registered_at": case(
                        (Miner.uid != statement.excluded.uid, func.now()),
                        else_=Miner.registered_at,
                    ),
                    "uid": statement.excluded.uid,
                    "coldkey": statement.excluded.coldkey,
                    "ip": statement.excluded.ip,
                    "port": statement.excluded.port,
                    "stake": statement.excluded.stake,
                    "validator_permit": statement.excluded.validator_permit,
                    "last_seen": func.now(),
                },
            )
        )
    return len(neurons), removed.rowcount  # type: ignore[attr-defined]


def _miner_row(neuron: Neuron) -> dict[str, object]:
    return {
        "hotkey": neuron.hotkey,
        "uid": neuron.uid,
        "coldkey": neuron.coldkey,
        "ip": neuron.ip,
        "port": neuron.port,
        "stake": neuron.stake,
        "validator_permit": neuron.validator_permit,
    }


def weights_window(window: int) -> Select[int, datetime]:
    """(run id, queried_at) of the ``window`` latest live runs whose day-1 phase is over
    (newest first; hindcasts never count): the runs the weights read, and retention keeps.

    A run's ``queried_at`` is when it fanned out to its miners (its responses' creation)."""
    queried_at = func.min(WeatherMinerResponse.created_at)
    return (
        select(WeatherForecastRun.id, queried_at)
        .join(WeatherMinerResponse, WeatherMinerResponse.run_id == WeatherForecastRun.id)
        .where(WeatherForecastRun.mode == RunMode.LIVE,
               WeatherForecastRun.status.in_(list(DAY1_OVER_RUN_STATUSES)))
        .group_by(WeatherForecastRun.id)
        .order_by(WeatherForecastRun.gfs_init_time.desc())
        .limit(window)
    )


async def latest_scored_runs(session: AsyncSession, window: int) -> list[RunScores]:
    """Roll-up scores of the :func:`weights_window` runs: no response of theirs is before
    ``day1_scored``, so every miner of theirs has a run score or never will."""
    runs = (await session.execute(weights_window(window))).all()
    if not runs:
        return []
    rows = await session.execute(
        select(WeatherMinerScore.run_id, WeatherMinerScore.miner_hotkey, WeatherMinerScore.value)
        .where(WeatherMinerScore.run_id.in_([run_id for run_id, _ in runs]),
               WeatherMinerScore.kind == ScoreKind.ROLLUP,
               WeatherMinerScore.metric == Metric.SCORE.value)
    )
    scores: dict[int, dict[str, float]] = {run_id: {} for run_id, _ in runs}
    for run_id, hotkey, value in rows:
        scores[run_id][hotkey] = float(value or 0.0)
    return [RunScores(run_id, when, scores[run_id]) for run_id, when in runs]


async def registrations(session: AsyncSession) -> list[Registration]:
    rows = await session.execute(select(Miner.hotkey, Miner.uid, Miner.registered_at))
    return [Registration(hotkey, uid, registered_at) for hotkey, uid, registered_at in rows]


async def admin_override_response(session: AsyncSession, response_id: int) -> int:
    """An operator starting a miner over, outside ``VALID_TRANSITIONS``: the response and its
    scores go and a fresh ``created`` row for the same run and hotkey takes its place (its
    id is returned)."""
    response = await session.get(WeatherMinerResponse, response_id)
    if response is None:
        raise LookupError(f"no response {response_id}")
    run_id, hotkey, uid = response.run_id, response.miner_hotkey, response.miner_uid
    log.warning("admin override: response %s of %s in run %s starts over", response_id,
                hotkey, run_id)
    await session.execute(delete(WeatherMinerScore).where(
        WeatherMinerScore.run_id == run_id, WeatherMinerScore.miner_hotkey == hotkey,
    ))
    await session.execute(delete(WeatherMinerResponse).where(WeatherMinerResponse.id == response_id))
    return await insert_response(session, run_id, hotkey, uid)


async def insert_response(session: AsyncSession, run_id: int, hotkey: str, uid: int | None) -> int:
    response_id = await session.scalar(
        insert(WeatherMinerResponse)
        .values(run_id=run_id, miner_hotkey=hotkey, miner_uid=uid)
        .returning(WeatherMinerResponse.id)
    )
    assert response_id is not None
    return response_id

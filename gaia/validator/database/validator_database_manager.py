"""Queries on runs, responses, miners and scores. Every function works inside the caller's
session and transaction, so a step's writes and the jobs it enqueues commit together.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
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
from gaia.tasks.defined_tasks.weather.scoring.records import ComponentRecord, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import (
    TERMINAL_RESPONSE_STATUSES,
    MinerResponseStatus,
    RunMode,
    RunStatus,
)
from gaia.validator.eligibility import Eligibility
from gaia.validator.weights import Registration, RunScores

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
    session: AsyncSession, init_time: datetime, mode: RunMode, commit_deadline: datetime
) -> tuple[int, bool]:
    """The run for (init time, mode): ``(id, True)`` when this call created it."""
    created = await session.scalar(
        insert(WeatherForecastRun)
        .values(gfs_init_time=init_time, mode=mode, commit_deadline=commit_deadline)
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


async def move_run(
    session: AsyncSession,
    run_id: int,
    allowed_from: Iterable[RunStatus],
    to: RunStatus,
    *,
    error: str | None = None,
) -> bool:
    """Conditionally set a run's status; False when the run was not in ``allowed_from``."""
    values: dict[str, object] = {"status": to, "updated_at": func.now()}
    if error is not None:
        values["error"] = error
    if to in (RunStatus.COMPLETED, RunStatus.ERROR):
        values["completed_at"] = func.now()
    result = await session.execute(
        update(WeatherForecastRun)
        .where(WeatherForecastRun.id == run_id, WeatherForecastRun.status.in_(list(allowed_from)))
        .values(**values)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


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
    *, missing: frozenset[tuple[str, int, int]] = frozenset(),
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
            "missing": (r.variable, r.level, r.lead_hours) in missing,
        }
        for r in records
    ]
    for start in range(0, len(rows), SCORE_ROWS_PER_STATEMENT):
        statement = insert(WeatherMinerScore).values(rows[start:start + SCORE_ROWS_PER_STATEMENT])
        await session.execute(
            statement.on_conflict_do_update(
                constraint="uq_scores_component",
                set_={"value": statement.excluded.value, "missing": statement.excluded.missing},
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
    return [(variable, level, lead, float(value)) for variable, level, lead, value in rows]


async def scored_leads(session: AsyncSession, run_id: int, hotkey: str, kind: ScoreKind) -> set[int]:
    rows = await session.scalars(
        select(WeatherMinerScore.lead_hours).distinct()
        .where(WeatherMinerScore.run_id == run_id, WeatherMinerScore.miner_hotkey == hotkey,
               WeatherMinerScore.kind == kind))
    return set(rows)


def rolled_up_run_status(statuses: Iterable[MinerResponseStatus]) -> RunStatus:
    """The run status its responses imply (DESIGN.md section 3)."""
    present = set(statuses)
    if not present or present <= TERMINAL_RESPONSE_STATUSES:
        return RunStatus.COMPLETED
    if present & {S.CREATED, S.FETCH_INITIATED, S.INFERENCE_RUNNING}:
        if present & {S.FORECAST_READY, S.DAY1_SCORING, S.DAY1_SCORED, S.ERA5_SCORING,
                      S.ERA5_SCORED}:
            return RunStatus.SCORING_DAY1
        return RunStatus.QUERYING_MINERS
    if present & {S.FORECAST_READY, S.DAY1_SCORING}:
        return RunStatus.SCORING_DAY1
    if S.ERA5_SCORING in present:
        return RunStatus.SCORING_ERA5
    return RunStatus.AWAITING_ERA5


ROLLED_UP_RUN_STATUSES = frozenset({
    RunStatus.QUERYING_MINERS, RunStatus.SCORING_DAY1, RunStatus.AWAITING_ERA5,
    RunStatus.SCORING_ERA5,
})


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
    if current not in ROLLED_UP_RUN_STATUSES:
        if current is None:
            raise LookupError(f"no run {run_id}")
        return current
    target = rolled_up_run_status(s for _, _, s in await responses_of_run(session, run_id))
    if target != current:
        await move_run(session, run_id, [current], target)
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


async def delete_response(session: AsyncSession, response_id: int) -> None:
    """Remove a response and its scores (an operator starting a miner over)."""
    response = await session.get(WeatherMinerResponse, response_id)
    if response is None:
        raise LookupError(f"no response {response_id}")
    await session.execute(delete(WeatherMinerScore).where(
        WeatherMinerScore.run_id == response.run_id,
        WeatherMinerScore.miner_hotkey == response.miner_hotkey,
    ))
    await session.execute(delete(WeatherMinerResponse).where(WeatherMinerResponse.id == response_id))


async def insert_response(session: AsyncSession, run_id: int, hotkey: str, uid: int | None) -> int:
    response_id = await session.scalar(
        insert(WeatherMinerResponse)
        .values(run_id=run_id, miner_hotkey=hotkey, miner_uid=uid)
        .returning(WeatherMinerResponse.id)
    )
    assert response_id is not None
    return response_id

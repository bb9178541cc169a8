"""``python -m gaia.validator.admin``: operator commands on the validator database.

    runs [--limit N]                 recent runs and their miners' states
    responses RUN_ID                 per-miner states of one run, with failure reasons
    queue                            jobs by type and state
    hindcast --init YYYY-MM-DDTHH    create a hindcast run (scored, never weighted)
    requeue RUN_ID HOTKEY            a failed miner starts over; a stuck one gets its next job
    reseed RUN_ID                    download a run's GFS data again and continue
    rescore RUN_ID [--hotkey H]      recompute the ERA5 scores and roll-up of scored miners
    weights [--submit]               the weights the scores give now (and submit them)
    pause [--reason TEXT] | resume   no new run or miner chain on any host (gaia/validator/pause.py)
    metagraph                        the neurons as this validator sees them (stake in alpha)
    purge [--dry-run]                finished runs past --run-retention-days go (admin_purge.py)
    db upgrade|downgrade|current     the database's migrations (gaia/validator/admin_db.py)

Settings as for ``python -m gaia.validator`` (``GAIA_*``, ``.env``, the flags below).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from gaia.chain.client import ChainError, InvalidWeights
from gaia.cli import (
    AXON_POLICY_FLAGS,
    DATABASE_FLAGS,
    GFS_FLAGS,
    LOG_FLAGS,
    RETENTION_FLAGS,
    WALLET_AND_CHAIN_FLAGS,
    add_flags,
    configure_logging,
    env_settings,
    parse_settings,
)
from gaia.clock import system_clock
from gaia.config import Settings
from gaia.database.connection import DatabaseUnavailable, check_connection
from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.jobs.queue import JobQueue, job_counts, singleton_key
from gaia.tasks.defined_tasks.weather.pipeline.job_types import WeatherJob
from gaia.tasks.defined_tasks.weather.pipeline.payloads import (
    ResponsePayload,
    RunCreatePayload,
    RunPayload,
)
from gaia.tasks.defined_tasks.weather.pipeline.workers import all_policies
from gaia.tasks.defined_tasks.weather.states import (
    ROLLED_UP_RUN_STATUSES,
    MinerResponseStatus,
    RunMode,
    RunStatus,
)
from gaia.validator import admin_db, admin_purge, pause
from gaia.validator.database import validator_database_manager as db
from gaia.validator.run_retention import RunRetention
from gaia.validator.runtime import WalletError

FLAGS = (DATABASE_FLAGS + WALLET_AND_CHAIN_FLAGS + AXON_POLICY_FLAGS + GFS_FLAGS + RETENTION_FLAGS
         + LOG_FLAGS)


class AdminError(Exception):
    """An operator command that cannot be carried out; the message says why."""


def _table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    cells = [list(map(str, header))] + [[("" if v is None else str(v)) for v in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells)


async def show_runs(session: AsyncSession, limit: int) -> str:
    runs = list(await session.scalars(
        select(WeatherForecastRun).order_by(WeatherForecastRun.id.desc()).limit(limit)
    ))
    rows = []
    for run in runs:
        counts = await session.execute(
            select(WeatherMinerResponse.status, func.count())
            .where(WeatherMinerResponse.run_id == run.id)
            .group_by(WeatherMinerResponse.status)
        )
        states = " ".join(f"{status.value}={n}" for status, n in counts)
        rows.append((run.id, f"{run.gfs_init_time:%Y-%m-%d %HZ}", run.mode.value,
                     run.status.value, states, run.error))
    return (await pause.status_line(session) + "\n"
            + _table(rows, ("run", "init", "mode", "status", "miners", "error")))


async def show_responses(session: AsyncSession, run_id: int) -> str:
    await db.get_run(session, run_id)  # an unknown run is an error, not an empty table
    responses = await session.scalars(
        select(WeatherMinerResponse).where(WeatherMinerResponse.run_id == run_id)
        .order_by(WeatherMinerResponse.miner_uid)
    )
    rows = [(r.miner_uid, r.miner_hotkey, r.status.value, r.failed_step, r.failure_reason)
            for r in responses]
    return _table(rows, ("uid", "hotkey", "status", "failed step", "reason"))


async def show_queue(session: AsyncSession) -> str:
    counts = await job_counts(session)
    rows = [(job_type, status.value, n) for (job_type, status), n in sorted(counts.items())]
    return _table(rows, ("job type", "state", "jobs"))


async def create_hindcast(
    session: AsyncSession, queue: JobQueue, init_time: datetime, commit_window: timedelta,
    now: datetime,
) -> str:
    if init_time > now:
        raise AdminError(f"--init {init_time:%Y-%m-%dT%H} is in the future: a hindcast scores "
                         "a GFS cycle that has been published")
    payload = RunCreatePayload(init_time=init_time, mode=RunMode.HINDCAST,
                               commit_deadline=now + commit_window)
    key = f"{WeatherJob.RUN_CREATE}:hindcast:{init_time:%Y%m%d%H}"
    job_id = await queue.enqueue(session, WeatherJob.RUN_CREATE, payload, singleton_key=key)
    return f"hindcast run for {init_time:%Y-%m-%d %HZ} " + (
        f"queued (job {job_id})" if job_id else "is already being created"
    )


NEXT_JOB: dict[MinerResponseStatus, WeatherJob] = {
    MinerResponseStatus.CREATED: WeatherJob.QUERY_MINER,
    MinerResponseStatus.FETCH_INITIATED: WeatherJob.POLL_MINER,
    MinerResponseStatus.INFERENCE_RUNNING: WeatherJob.POLL_MINER,
    MinerResponseStatus.FORECAST_READY: WeatherJob.DAY1_SCORE,
    MinerResponseStatus.DAY1_SCORING: WeatherJob.DAY1_SCORE,
    MinerResponseStatus.DAY1_SCORED: WeatherJob.ERA5_SCORE,
    MinerResponseStatus.ERA5_SCORING: WeatherJob.ERA5_SCORE,
}
"""The job that moves a response on from each non-terminal state."""

REQUEUE_RUN_FROM = ROLLED_UP_RUN_STATUSES | {RunStatus.COMPLETED}
"""Runs a failed miner can start over in: they go back to ``querying_miners`` (an override)."""

RESEED_RUN_FROM = frozenset({RunStatus.ERROR, RunStatus.CREATED, RunStatus.GFS_DOWNLOADING})
"""Runs that can be seeded again: back to ``created`` (an override)."""


async def requeue_miner(session: AsyncSession, queue: JobQueue, run_id: int, hotkey: str) -> str:
    """Get one miner of a run going again.

    A failed response starts over: its row and scores are replaced by a fresh one and
    ``weather.query_miner`` is queued. A response in a non-terminal state gets the job its
    state needs (:data:`NEXT_JOB`), as a live singleton; if a live job already holds that key
    nothing changes (:class:`AdminError` says so). ``era5_scored`` is final.
    """
    response = await session.scalar(
        select(WeatherMinerResponse).where(WeatherMinerResponse.run_id == run_id,
                                           WeatherMinerResponse.miner_hotkey == hotkey)
        .with_for_update()
    )
    if response is None:
        await db.get_run(session, run_id)  # names an unknown run as such
        raise LookupError(f"run {run_id} has no response from {hotkey}")
    if response.status is MinerResponseStatus.FAILED:
        return await _start_over(session, queue, response)
    job_type = NEXT_JOB.get(response.status)
    if job_type is None:
        raise AdminError(f"{hotkey} is {response.status.value} in run {run_id}: nothing to requeue")
    payload = ResponsePayload(run_id=run_id, response_id=response.id, miner_hotkey=hotkey)
    key = singleton_key(job_type, run=run_id, hotkey=hotkey)
    job_id = await queue.enqueue(session, job_type, payload, singleton_key=key)
    if job_id is None:
        raise AdminError(f"{hotkey} is {response.status.value} in run {run_id} and a live "
                         f"{job_type} job already holds {key}; nothing changed")
    return f"{hotkey} ({response.status.value}) in run {run_id}: {job_type} queued (job {job_id})"


async def _start_over(session: AsyncSession, queue: JobQueue, response: WeatherMinerResponse) -> str:
    run_id, hotkey = response.run_id, response.miner_hotkey
    response_id = await db.admin_override_response(session, response.id)
    await db.admin_override_run(session, run_id, REQUEUE_RUN_FROM, RunStatus.QUERYING_MINERS)
    await db.refresh_run_status(session, run_id)
    payload = ResponsePayload(run_id=run_id, response_id=response_id, miner_hotkey=hotkey)
    await queue.enqueue(session, WeatherJob.QUERY_MINER, payload,
                        singleton_key=singleton_key(WeatherJob.QUERY_MINER, run=run_id, hotkey=hotkey))
    return f"{hotkey} requeued in run {run_id}"


async def reseed_run(session: AsyncSession, queue: JobQueue, run_id: int) -> str:
    run = await db.get_run(session, run_id)
    if run.status not in RESEED_RUN_FROM:
        raise AdminError(f"run {run_id} is {run.status.value}; only runs before fan-out "
                         f"or in error can be seeded again")
    await db.admin_override_run(session, run_id, {run.status}, RunStatus.CREATED)
    await queue.enqueue(session, WeatherJob.SEED, RunPayload(run_id=run_id),
                        singleton_key=singleton_key(WeatherJob.SEED, run=run_id))
    return f"run {run_id} will be seeded again"


def build_parser(defaults: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m gaia.validator.admin",
                                     description=__doc__.split("\n\n")[0])
    add_flags(parser, FLAGS, defaults)
    commands = parser.add_subparsers(dest="command", required=True)
    admin_db.add_parser(commands)
    admin_purge.add_parser(commands)
    commands.add_parser("runs", help="recent runs").add_argument(
        "--limit", type=_positive(int), default=10)
    commands.add_parser("responses", help="miners of one run").add_argument("run_id", type=int)
    commands.add_parser("queue", help="jobs by type and state")
    hindcast = commands.add_parser("hindcast", help="create a hindcast run")
    hindcast.add_argument("--init", required=True, type=_cycle, help="GFS cycle, YYYY-MM-DDTHH")
    hindcast.add_argument("--commit-window-minutes", type=_positive(float), default=180.0)
    requeue = commands.add_parser(
        "requeue", help="start a failed miner over, or re-enqueue a stuck miner's next job")
    requeue.add_argument("run_id", type=int)
    requeue.add_argument("hotkey")
    commands.add_parser("reseed", help="download a run's GFS data again").add_argument(
        "run_id", type=int)
    rescore = commands.add_parser("rescore", help="recompute ERA5 scores of a run")
    rescore.add_argument("run_id", type=int)
    rescore.add_argument("--hotkey")
    commands.add_parser("weights", help="weights from the scores now").add_argument(
        "--submit", action="store_true", help="also submit them to the chain")
    commands.add_parser(
        "pause", help="create no new run and start no miner chain, on every validator process; "
        "started chains drain").add_argument("--reason", default="", help="shown by runs")
    commands.add_parser("resume", help="undo pause; the day's run follows if its window is open")
    commands.add_parser(
        "metagraph", help="the neurons as this validator sees them: uid, hotkey, stake (in the "
        "subnet's alpha), validator permit, axon, and whether it would query them")
    return parser


def _positive(kind: type[int] | type[float]) -> Callable[[str], int | float]:
    """An argparse type: a number of ``kind`` above zero."""
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value
    return parse


def _cycle(text: str) -> datetime:
    try:
        moment = datetime.strptime(text, "%Y-%m-%dT%H").replace(tzinfo=UTC)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not YYYY-MM-DDTHH") from None
    if moment.hour % 6:
        raise argparse.ArgumentTypeError(f"{text!r} is not a 6-hourly GFS cycle")
    return moment


async def run_command(settings: Settings, args: argparse.Namespace) -> str:
    if args.command == "metagraph":  # reads the chain only: no database needed
        from gaia.validator.admin_chain import HEADER, neuron_rows

        summary, rows = await neuron_rows(settings)
        return summary + "\n" + _table(rows, HEADER)
    engine = create_async_engine(settings.database_url)
    factory = async_sessionmaker(engine, expire_on_commit=False)
    queue = JobQueue(all_policies())
    try:
        await check_connection(engine, settings.database_url)
        if args.command == "purge":
            return await admin_purge.purge_command(
                factory, RunRetention.of(settings.validator), system_clock(), dry_run=args.dry_run)
        async with factory.begin() as session:
            match args.command:
                case "runs":
                    return await show_runs(session, args.limit)
                case "responses":
                    return await show_responses(session, args.run_id)
                case "queue":
                    return await show_queue(session)
                case "hindcast":
                    window = timedelta(minutes=args.commit_window_minutes)
                    return await create_hindcast(session, queue, args.init, window,
                                                 system_clock())
                case "requeue":
                    return await requeue_miner(session, queue, args.run_id, args.hotkey)
                case "reseed":
                    return await reseed_run(session, queue, args.run_id)
                case "pause":
                    return await pause.pause(session, args.reason, system_clock())
                case "resume":
                    return await pause.resume(session)
        from gaia.validator.admin_scoring import rescore_run, show_weights

        if args.command == "rescore":
            async with factory() as session:  # an unknown run before the wallet is read
                await db.get_run(session, args.run_id)
            return await rescore_run(settings, factory, args.run_id, args.hotkey)
        return await show_weights(settings, factory, submit=args.submit)
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> int:
    base = env_settings("gaia.validator.admin")
    args, settings = parse_settings(build_parser(base), argv, FLAGS, base)
    configure_logging(settings.log_level)
    try:
        if args.command == "db":  # Alembic runs its own event loop
            print(admin_db.run(settings, args))
        else:
            print(asyncio.run(run_command(settings, args)))
    except (AdminError, WalletError, InvalidWeights, admin_db.DatabaseCommandError) as error:
        print(f"gaia.validator.admin: {error}", file=sys.stderr)
        return 2
    except (LookupError, DatabaseUnavailable) as error:  # no such run/hotkey; no database
        print(f"gaia.validator.admin: {error}", file=sys.stderr)
        return 1
    except ChainError as error:
        print(f"gaia.validator.admin: chain: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m gaia.validator.admin purge [--dry-run]``: the run retention, by hand.

``--dry-run`` counts what the periodic ``validator.retention`` job would remove now (rows
per table, the oldest and newest run it would take) and removes nothing; without it the
purge runs now, in the same bounded transactions.
"""

from __future__ import annotations

import argparse
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.validator.database.run_purge import PurgePlan, RunMark
from gaia.validator.run_retention import RunRetention, plan_purge, purge_runs


def add_parser(commands: argparse._SubParsersAction) -> None:
    purge = commands.add_parser(
        "purge", help="purge finished runs older than --run-retention-days, with their "
        "responses, scores and finished jobs")
    purge.add_argument("--dry-run", action="store_true",
                       help="show what would be removed; remove nothing")


def _mark(mark: RunMark) -> str:
    return (f"run {mark.run_id} (init {mark.gfs_init_time:%Y-%m-%d %HZ}, {mark.mode.value}, "
            f"{mark.status.value}, last moment {mark.last_moment:%Y-%m-%d %H:%M} UTC)")


def describe_plan(plan: PurgePlan, retention: RunRetention) -> str:
    days = retention.keep / timedelta(days=1)
    head = (f"runs finished before {plan.cutoff:%Y-%m-%d %H:%M} UTC ({days:g} days), outside "
            f"the {retention.weights_window_runs}-run weights window, with no live job:")
    lines = [head] + [f"  {table:<25} {n}" for table, n in plan.counts.items()]
    if plan.oldest is not None and plan.newest is not None:
        lines += [f"  oldest: {_mark(plan.oldest)}", f"  newest: {_mark(plan.newest)}"]
    return "\n".join(lines)


async def purge_command(
    session_factory: async_sessionmaker[AsyncSession], retention: RunRetention, now: datetime,
    *, dry_run: bool,
) -> str:
    if dry_run:
        plan = await plan_purge(session_factory, retention, now)
        return describe_plan(plan, retention) + "\ndry run: nothing removed"
    return (await purge_runs(session_factory, retention, now)).summary()

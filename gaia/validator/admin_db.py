"""``python -m gaia.validator.admin db …``: the validator database's migrations, from any
directory, with the scripts the installed package ships.

    db upgrade [REVISION]      to REVISION (default head); adopts the previous validator's database
    db downgrade REVISION      back to REVISION; ``base`` gives the previous validator its database
    db current                 where the database is

The schema need not be at head for these: they are how it gets there.
"""

from __future__ import annotations

import argparse
import asyncio

from alembic.util import CommandError
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.config import Settings
from gaia.database import migrations
from gaia.database.connection import check_connection
from gaia.database.previous_validator.detect import PREVIOUS_HEAD, PREVIOUS_RELEASE, NotAdoptable
from gaia.database.previous_validator.refusals import AdoptionRefused
from gaia.database.previous_validator.rollback import RollbackRefused


class DatabaseCommandError(Exception):
    """A migration that refused or could not run; the database is as it was."""


def add_parser(commands: argparse._SubParsersAction) -> None:
    db = commands.add_parser("db", help="database migrations (upgrade, downgrade, current)")
    actions = db.add_subparsers(dest="db_command", required=True)
    actions.add_parser("upgrade", help="migrate up (default: to head)").add_argument(
        "revision", nargs="?", default="head")
    actions.add_parser("downgrade", help="migrate down (base: the previous validator's schema)"
                       ).add_argument("revision")
    actions.add_parser("current", help="the database's revision")


def run(settings: Settings, args: argparse.Namespace) -> str:
    """Carry out one ``db`` command; outside any event loop (Alembic's environment runs its own)."""
    url = settings.database_url
    asyncio.run(_reachable(url))
    try:
        match args.db_command:
            case "upgrade":
                migrations.upgrade(url, args.revision)
            case "downgrade":
                migrations.downgrade(url, args.revision)
    except (AdoptionRefused, RollbackRefused, NotAdoptable, CommandError) as error:
        raise DatabaseCommandError(str(error)) from error
    return asyncio.run(describe(url))


async def _reachable(url: str) -> None:
    """One clear line (:class:`DatabaseUnavailable`) for a wrong URL, before Alembic starts."""
    engine = create_async_engine(url)
    try:
        await check_connection(engine, url)
    finally:
        await engine.dispose()


async def describe(url: str) -> str:
    engine = create_async_engine(url)
    try:
        current = await migrations.current_revision(engine)
        previous = await migrations.previous_validator_revision(engine)
    finally:
        await engine.dispose()
    head = migrations.head_revision()
    if current == head:
        return f"database at {head} (head)"
    if current is not None:
        return f"database at {current}, head is {head}: `{migrations.UPGRADE_COMMAND}`"
    if previous == PREVIOUS_HEAD:
        return (f"the previous validator's database ({PREVIOUS_RELEASE}, its revision "
                f"{previous}); `{migrations.UPGRADE_COMMAND}` adopts it")
    return f"database at base, head is {head}: `{migrations.UPGRADE_COMMAND}`"

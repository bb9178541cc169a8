"""Run and inspect the validator's Alembic migrations from Python (tests, entry points, the
admin ``db`` command). The scripts ship inside the package (``alembic_scripts/``), so an
installed wheel migrates without a checkout; the root ``alembic.ini`` points at the same
scripts for ``alembic`` in a checkout.

This project keeps its revision in a version table of its own, ``gaia_weather_alembic_version``:
the previous validator keeps its revision in the default ``alembic_version``, and that row
stays where it is, for its own Alembic, when this project adopts the database.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from gaia.database.previous_validator.detect import PREVIOUS_HEAD, PREVIOUS_RELEASE

SCRIPT_DIRECTORY = Path(__file__).resolve().parent / "alembic_scripts"
VERSION_TABLE = "gaia_weather_alembic_version"
UPGRADE_COMMAND = "python -m gaia.validator.admin db upgrade head"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(SCRIPT_DIRECTORY))
    config.set_main_option("path_separator", "os")
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str) -> None:
    command.downgrade(alembic_config(database_url), revision)


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config("postgresql://unused")).get_current_head()
    if head is None:
        raise RuntimeError("the migrations folder has no revisions")
    return head


async def current_revision(engine: AsyncEngine) -> str | None:
    """The database's revision of this project, or None where this project never migrated it."""
    async with engine.connect() as conn:
        has_table = await conn.scalar(text(f"SELECT to_regclass('{VERSION_TABLE}') IS NOT NULL"))
        if not has_table:
            return None
        return await conn.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))


async def previous_validator_revision(engine: AsyncEngine) -> str | None:
    """The previous validator's own Alembic revision (``alembic_version``), if it has one."""
    async with engine.connect() as conn:
        if not await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL")):
            return None
        return await conn.scalar(text("SELECT version_num FROM alembic_version LIMIT 1"))


class SchemaOutOfDate(RuntimeError):
    def __init__(self, current: str | None, head: str, previous: str | None = None) -> None:
        if current is None and previous == PREVIOUS_HEAD:
            found = (f"the database is the previous validator's ({PREVIOUS_RELEASE}, its "
                     f"revision {previous}), not yet adopted")
        else:
            found = f"the database schema is at revision {current or 'none'}"
        super().__init__(
            f"{found}, this version needs {head}; run `alembic upgrade head` or "
            f"`{UPGRADE_COMMAND}` (with GAIA_DATABASE_URL set) and start again"
        )


async def require_head(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        previous = await previous_validator_revision(engine) if current is None else None
        raise SchemaOutOfDate(current, head, previous)

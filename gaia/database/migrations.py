"""Run and inspect the validator's Alembic migrations from Python (tests, entry points)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def alembic_config(database_url: str) -> Config:
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
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
    """The database's Alembic revision, or None for a database Alembic never touched."""
    async with engine.connect() as conn:
        has_table = await conn.scalar(text("SELECT to_regclass('alembic_version') IS NOT NULL"))
        if not has_table:
            return None
        return await conn.scalar(text("SELECT version_num FROM alembic_version"))


class SchemaOutOfDate(RuntimeError):
    def __init__(self, current: str | None, head: str) -> None:
        super().__init__(
            f"the database schema is at revision {current or 'none'}, this version needs {head}; "
            f"run `alembic upgrade head` (with GAIA_DATABASE_URL set) and start again"
        )


async def require_head(engine: AsyncEngine) -> None:
    current, head = await current_revision(engine), head_revision()
    if current != head:
        raise SchemaOutOfDate(current, head)

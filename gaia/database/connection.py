"""The first contact with the validator's database, as one clear line when it fails.

A process checks the connection once at start; what can go wrong there is an operator's
setting (a closed port, an unknown host, a database that does not exist, a wrong password, a
URL for another database engine), so it becomes :class:`DatabaseUnavailable` naming the URL
(password hidden) and the reason. Later failures are the jobs' business (they retry).
"""

from __future__ import annotations

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine


class DatabaseUnavailable(RuntimeError):
    """The database named by the settings cannot be used; the message says why."""


def redacted(url: str) -> str:
    """``url`` with its password hidden (as given when it does not parse)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


def _reason(error: BaseException) -> str:
    if isinstance(error, DBAPIError) and error.orig is not None:
        return str(error.orig).strip().splitlines()[0]
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


async def check_connection(engine: AsyncEngine, url: str) -> None:
    """Connect once; raise :class:`DatabaseUnavailable` with the reason when that fails."""
    try:
        async with engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
    except (OSError, DBAPIError) as error:
        raise DatabaseUnavailable(
            f"cannot use the database at {redacted(url)}: {_reason(error)}"
        ) from error

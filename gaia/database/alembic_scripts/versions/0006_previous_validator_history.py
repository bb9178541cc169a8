"""Carry the previous validator's weather history into this project's tables.

Only on a database that ``0000`` adopted; a no-op elsewhere. Runs and responses keep their ids
and get their new statuses by the mapping in ``gaia/database/previous_validator/ADOPTION.md``;
the previous per-run scores become day-1 and roll-up scores; the previous metagraph seeds
``miners``; work still in its commit window gets its next job. Downgrade writes what changed
back into the previous tables and empties this project's.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import op

from gaia.database.previous_validator import detect, history, rollback
from gaia.tasks.defined_tasks.weather.pipeline.job_types import RETRY_CONFIG

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    conn = op.get_bind()
    if detect.is_adopted(conn):
        history.carry(conn, RETRY_CONFIG)


def downgrade() -> None:
    conn = op.get_bind()
    if detect.is_adopted(conn):
        rollback.give_back(conn)

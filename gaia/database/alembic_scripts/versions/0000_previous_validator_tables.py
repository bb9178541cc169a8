"""Recognise the previous validator's database (Gaia v2.9.96) and set its weather tables aside.

On an empty database this does nothing. On the previous validator's (its ``alembic_version``
holds ``f33d500dc2bc``), it first checks everything the adoption needs and refuses, changing
nothing, with a message naming the rows; then it renames the four tables whose names this
project's take (runs, responses, scores, jobs) to ``previous_…`` with their sequences and
indexes. ``0001``–``0005`` then build this project's tables as on an empty database, and
``0006`` carries the history across. Any other database with weather tables is refused.

Revision ID: 0000
Revises:
Create Date: 2026-12-02
"""

from collections.abc import Sequence

from alembic import context, op

from gaia.database.previous_validator import detect, refusals, set_aside

revision: str = "0000"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    own = frozenset(script.revision for script in context.script.walk_revisions())
    conn = op.get_bind()
    if detect.classify(conn, own) is detect.DatabaseKind.PREVIOUS_VALIDATOR:
        refusals.check(conn)
        set_aside.set_aside(conn)


def downgrade() -> None:
    conn = op.get_bind()
    if detect.is_adopted(conn):
        set_aside.put_back(conn)

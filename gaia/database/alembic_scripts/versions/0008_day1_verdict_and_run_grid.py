"""The day-1 verdict on the response row, the run's grid, no ``missing`` score column.

- ``weather_miner_responses.day1_score``, ``day1_passed``, ``day1_clone``: the verdict the
  roll-up reads, all NULL until day-1 is scored. Upgrading fills them from the day-1 summary
  score rows (kept: they are the audit trail), so a run scored before the upgrade rolls up
  after it; downgrading drops them, and those rows still hold the verdict.
- ``weather_forecast_runs.grid_deg``: the grid a commitment is checked against. Runs made
  before the upgrade get the protocol's 0.25°, the only grid a production run had.
- ``weather_miner_scores.missing``: dropped; it was always false (a withheld field is the
  ``missing`` component row). Downgrading restores it, false, with its server default.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PROTOCOL_GRID_DEG = 0.25  # weather.protocol.GRID_DEG when this revision was written
VERDICT_CHECK = "ck_weather_miner_responses_day1_verdict"

# One row per response with all three summary rows (kind day1, variable 'all', level and
# lead 0), whatever its status: a response that failed after day-1 still rolls up.
BACKFILL_VERDICT = """
UPDATE weather_miner_responses AS r
SET day1_score = v.score, day1_passed = v.passed, day1_clone = v.clone
FROM (
    SELECT run_id, miner_hotkey,
           max(value) FILTER (WHERE metric = 'score') AS score,
           bool_or(value = 1.0) FILTER (WHERE metric = 'passed') AS passed,
           bool_or(value = 1.0) FILTER (WHERE metric = 'clone') AS clone
    FROM weather_miner_scores
    WHERE kind = 'day1' AND variable = 'all' AND level = 0 AND lead_hours = 0
    GROUP BY run_id, miner_hotkey
) AS v
WHERE r.run_id = v.run_id AND r.miner_hotkey = v.miner_hotkey
  AND num_nulls(v.score, v.passed, v.clone) = 0
"""


def upgrade() -> None:
    op.add_column("weather_miner_responses", sa.Column("day1_score", sa.Double))
    op.add_column("weather_miner_responses", sa.Column("day1_passed", sa.Boolean))
    op.add_column("weather_miner_responses", sa.Column("day1_clone", sa.Boolean))
    op.execute(BACKFILL_VERDICT)
    op.create_check_constraint(
        op.f(VERDICT_CHECK), "weather_miner_responses",
        "num_nulls(day1_score, day1_passed, day1_clone) IN (0, 3)",
    )
    op.add_column("weather_forecast_runs", sa.Column(
        "grid_deg", sa.Double, nullable=False, server_default=sa.text(str(PROTOCOL_GRID_DEG))))
    op.alter_column("weather_forecast_runs", "grid_deg", server_default=None)
    op.drop_column("weather_miner_scores", "missing")


def downgrade() -> None:
    op.add_column("weather_miner_scores", sa.Column(
        "missing", sa.Boolean, nullable=False, server_default=sa.text("false")))
    op.drop_column("weather_forecast_runs", "grid_deg")
    op.drop_constraint(op.f(VERDICT_CHECK), "weather_miner_responses", type_="check")
    op.drop_column("weather_miner_responses", "day1_clone")
    op.drop_column("weather_miner_responses", "day1_passed")
    op.drop_column("weather_miner_responses", "day1_score")

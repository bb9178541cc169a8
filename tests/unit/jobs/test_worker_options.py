"""Worker options from the validator's settings."""

from __future__ import annotations

import pytest

from gaia.config import ValidatorSettings
from gaia.jobs import WorkerOptions, asyncpg_dsn


def test_options_come_from_settings():
    settings = ValidatorSettings(workers=4, lease_s=30, backoff_scale=0.01, job_retention_days=3)
    options = WorkerOptions.from_settings(settings, shutdown_grace_s=5)
    assert (options.concurrency, options.lease_s, options.backoff_scale) == (4, 30, 0.01)
    assert (options.retention_days, options.shutdown_grace_s) == (3, 5)
    assert options.reap_every_s == 15


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"prefetch": -1}, {"lease_s": 0}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        WorkerOptions(**bad)


def test_asyncpg_dsn_drops_the_sqlalchemy_driver():
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    with pytest.raises(ValueError, match="sqlite"):
        asyncpg_dsn("sqlite+aiosqlite:///x.db")

"""Worker options and the worker's database address."""

from __future__ import annotations

import pytest

from gaia.jobs import WorkerOptions, asyncpg_dsn


def test_reaper_runs_every_half_lease_unless_set():
    assert WorkerOptions(lease_s=30).reap_every_s == 15
    assert WorkerOptions(lease_s=30, reap_interval_s=4).reap_every_s == 4


@pytest.mark.parametrize("bad", [{"concurrency": 0}, {"prefetch": -1}, {"lease_s": 0}])
def test_bad_options_are_refused(bad):
    with pytest.raises(ValueError):
        WorkerOptions(**bad)


def test_asyncpg_dsn_drops_the_sqlalchemy_driver():
    assert asyncpg_dsn("postgresql+asyncpg://u:p@h:5/db") == "postgresql://u:p@h:5/db"
    with pytest.raises(ValueError, match="sqlite"):
        asyncpg_dsn("sqlite+aiosqlite:///x.db")

"""``python -m gaia.localnet --days 17``, as an operator runs it: 17 simulated days of a live
validator with production durations on a virtual clock, real miners, the real queue.

It must set weights every day from the first, score every lead within a day of ERA5
publishing it, complete every run whose last lead was due, leave no response behind, never
fail an honest miner (a miner answering 404 for a file still needed would be failed), and
purge on the miners exactly what no validator will read again."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import bittensor as bt
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.database.validator_schema import WeatherMinerResponse
from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key
from gaia.tasks.defined_tasks.weather.protocol import job_id_for
from gaia.tasks.defined_tasks.weather.retention import EARLY_LEADS_DELETED
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus

REPO_ROOT = Path(__file__).resolve().parents[2]
DAYS = 17
ERA5_DELAY = timedelta(days=5)
LEADS = range(24, 241, 24)
LIVE_OR_SCORED = {MinerResponseStatus.DAY1_SCORED, MinerResponseStatus.ERA5_SCORING,
                  MinerResponseStatus.ERA5_SCORED}

pytestmark = [pytest.mark.timeout(1800), pytest.mark.slow]


def _run(workdir: Path, database_url: str, name: str) -> str:
    env = {**os.environ, "GAIA_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "gaia.localnet", "--days", str(DAYS), "--miners", "4",
         "--workdir", str(workdir), "--database-name", name, "--plain"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=1700, check=False)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"exit {result.returncode}\n{output[-8000:]}"
    return output


async def _responses(url: str) -> list:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            return list((await conn.execute(select(WeatherMinerResponse))).all())
    finally:
        await engine.dispose()


def test_seventeen_days_on_the_production_timeline(tmp_path: Path, localnet_database) -> None:  # type: ignore[no-untyped-def]
    workdir = tmp_path / "gaia"
    output = _run(workdir, localnet_database.url, localnet_database.name)
    responses = asyncio.run(_responses(localnet_database.url))
    (report,) = list((workdir / "reports").iterdir())
    calendar = json.loads((report / "calendar.json").read_text())
    days = calendar["days"]
    assert len(days) == DAYS and output.count(" ERA5 leads scored today ") == DAYS
    _check_weights(days)
    _check_runs(days, datetime.fromisoformat(calendar["started"]) + timedelta(days=DAYS))
    hotkeys = _hotkeys(workdir / "subnet" / "wallets")
    _check_responses(responses, hotkeys)
    _check_retention(workdir / "subnet", hotkeys, days)
    assert (report / "weights_by_day.png").read_bytes()[:4] == b"\x89PNG"


def _check_weights(days: list[dict]) -> None:
    for day in days:
        assert day["weights_submitted"] > 0 and day["weights"], day["date"]
        assert sum(day["weights"].values()) == pytest.approx(1.0)
        assert day["weights"]["miner4"] == 0.0  # stopped on day one, never back
        assert all(day["weights"][role] > 0 for role in ("miner1", "miner2", "miner3"))


def _check_runs(days: list[dict], end: datetime) -> None:
    runs = days[-1]["runs"]
    assert len(runs) == DAYS  # one live run a day, the first on day one
    completed = 0
    for run in runs:
        init = datetime.fromisoformat(run["gfs_init_time"])
        assert init.hour == 12
        for lead in LEADS:
            published = init + timedelta(hours=lead) + ERA5_DELAY
            scored = run["leads_scored"].get(str(lead))
            if published < end:
                assert scored is not None, (run["id"], lead)
                assert published <= datetime.fromisoformat(scored) <= published + timedelta(days=1)
            else:
                assert scored is None, (run["id"], lead)
        if init + timedelta(hours=max(LEADS)) + ERA5_DELAY < end:
            assert RunStatus(run["status"]) is RunStatus.COMPLETED, run
            completed += 1
    assert completed == 2  # the runs of 1 and 2 January reached their last lead
    assert all(not day["stranded"] for day in days)


def _hotkeys(wallets: Path) -> dict[str, str]:
    return {role: bt.Wallet(name=role, hotkey="default", path=str(wallets)).hotkey.ss58_address
            for role in ("miner1", "miner2", "miner3", "miner4")}


def _check_responses(responses: list, hotkeys: dict[str, str]) -> None:
    role_of = {hotkey: role for role, hotkey in hotkeys.items()}
    for response in responses:
        role = role_of[response.miner_hotkey]
        if role == "miner4":
            assert response.status is MinerResponseStatus.FAILED, response
        else:
            assert response.status in LIVE_OR_SCORED, (role, response.status,
                                                       response.failure_reason)


def _check_retention(subnet: Path, hotkeys: dict[str, str], days: list[dict]) -> None:
    inits = [datetime.fromisoformat(run["gfs_init_time"]) for run in days[-1]["runs"]]
    store = subnet / "miner1" / "forecasts"
    hotkey = hotkeys["miner1"]
    first, middle, last = (store / job_id_for(hotkey, inits[i]) for i in (0, 8, -1))
    assert not first.exists()  # 16 days after its init: nothing is read any more
    assert (middle / EARLY_LEADS_DELETED).exists()  # only its ERA5 leads are left
    assert not (middle / chunk_key("2t", 0, None)).exists()  # lead 6 h
    assert (middle / chunk_key("2t", 3, None)).exists()  # lead 24 h
    assert (last / chunk_key("2t", 0, None)).exists()  # day-1 may still read it
    sizes = [day["miner_disk_bytes"]["miner1"] for day in days]
    assert all(size > 0 for size in sizes)

"""``python -m gaia.localnet`` end to end, as a user runs it: one subprocess, a small subnet,
the test PostgreSQL server through GAIA_DATABASE_URL. The run must complete with the right
outcome for every miner, weights written on the static chain, a report on disk, and nothing
left running."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.chain.static import StaticChainClient
from gaia.database.validator_schema import (
    WeatherForecastRun,
    WeatherMinerResponse,
    WeatherMinerScore,
)
from gaia.tasks.defined_tasks.weather.scoring.records import Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus
from tests.fixtures.aurora import aurora_available

REPO_ROOT = Path(__file__).resolve().parents[2]
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]
# the default roster, then a tiny random-weight Aurora (the `aurora` extra): the localnet
# runs a torch model through the same path as the numpy ones
MODELS = ("spectral_advection", "persistence", "noisy_persistence", "persistence",
          *(("aurora",) if aurora_available() else ()))


def _run_localnet(workdir: Path, database_url: str, database_name: str) -> str:
    env = {**os.environ, "GAIA_DATABASE_URL": database_url}
    result = subprocess.run(
        [sys.executable, "-m", "gaia.localnet", "--models", ",".join(MODELS), "--grid", "5",
         "--workdir", str(workdir), "--database-name", database_name, "--timeout-s", "420"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=560, check=False)
    output = result.stdout + result.stderr
    logs = workdir / "subnet" / "logs"
    tails = "".join(f"\n--- {p.name}\n{p.read_text(errors='replace')[-2000:]}"
                    for p in sorted(logs.glob("*.log"))) if logs.exists() else ""
    assert result.returncode == 0, f"exit {result.returncode}\n{output[-6000:]}{tails}"
    return output


async def _database_state(url: str) -> tuple[list, list, list]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:
            runs = (await conn.execute(select(WeatherForecastRun))).all()
            responses = (await conn.execute(select(WeatherMinerResponse))).all()
            scores = (await conn.execute(
                select(WeatherMinerScore.miner_hotkey, WeatherMinerScore.kind,
                       WeatherMinerScore.metric, WeatherMinerScore.variable,
                       WeatherMinerScore.value))).all()
    finally:
        await engine.dispose()
    return runs, responses, scores


def _left_running(process_list: Path) -> list[str]:
    """Live processes in the process groups of the localnet's children (each child leads
    its own group, so this finds their children too, e.g. the validator's scoring pool)."""
    groups = set(json.loads(process_list.read_text()).values())
    assert len(groups) == len(MODELS) + 1  # the miners, 1 validator worker
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # the process ended while we looked
        if fields[0] != "Z" and int(fields[2]) in groups:
            found.append(stat.parent.name)
    return found


def test_localnet_runs_a_hindcast_end_to_end(tmp_path: Path, localnet_database) -> None:  # type: ignore[no-untyped-def]
    workdir = tmp_path / "gaia"
    output = _run_localnet(workdir, localnet_database.url, localnet_database.name)
    runs, responses, scores = asyncio.run(_database_state(localnet_database.url))
    assert _left_running(workdir / "subnet" / "processes.json") == []
    reports = list((workdir / "reports").iterdir())
    assert len(reports) == 1
    board = json.loads((reports[0] / "scoreboard.json").read_text())
    _check_run(runs, responses, scores, board)
    _check_weights(workdir, board)
    _check_png(reports[0] / "skill_by_lead.png")
    assert "local demonstration of weight setting" in output
    assert str(reports[0] / "skill_by_lead.png") in output


def _check_run(runs: list, responses: list, scores: list, board: dict) -> None:
    assert [(str(r.mode), str(r.status)) for r in runs] == [("hindcast", "completed")]
    by_role = {row["role"]: row for row in board["rows"]}
    assert {row["model"] for row in board["rows"]} >= {
        "spectral_advection", "persistence", "noisy_persistence"}
    response_of = {r.miner_hotkey: r for r in responses}
    kinds = {(hotkey, kind) for hotkey, kind, _, _, _ in scores}
    rollup = {hotkey: value for hotkey, kind, metric, variable, value in scores
              if kind is ScoreKind.ROLLUP and metric == Metric.SCORE}
    healthy = [row for row in board["rows"] if not row["dies"]]
    dying = [row for row in board["rows"] if row["dies"]]
    assert len(dying) == 1 and len(healthy) == len(MODELS) - 1
    assert sorted(row["model"] for row in board["rows"]) == sorted(MODELS)
    for row in healthy:
        assert response_of[row["hotkey"]].status is MinerResponseStatus.ERA5_SCORED, row
        assert {(row["hotkey"], ScoreKind.DAY1), (row["hotkey"], ScoreKind.ERA5)} <= kinds
        assert row["day1_score"] is not None and row["era5_skill_by_lead"]
        assert row["run_score"] == pytest.approx(rollup[row["hotkey"]])
    dead = response_of[dying[0]["hotkey"]]
    assert (dead.status, dead.failed_step) == (MinerResponseStatus.FAILED, "poll_miner")
    assert dead.failure_reason and "no forecast in time" in dead.failure_reason
    good, plain = by_role["miner1"], by_role["miner2"]
    assert (good["model"], plain["model"]) == ("spectral_advection", "persistence")
    assert rollup[good["hotkey"]] > rollup[plain["hotkey"]]


def _check_weights(workdir: Path, board: dict) -> None:
    chain_path = workdir / "subnet" / "chain" / "neurons.json"
    neurons = json.loads(chain_path.read_text())["neurons"]
    validator = next(n["hotkey"] for n in neurons if n["validator_permit"])
    written = StaticChainClient(chain_path, hotkey=validator).read_weights(validator)
    assert written is not None, "no weights file for the validator's hotkey"
    weights = dict(zip(written["uids"], written["weights"], strict=True))
    assert sum(weights.values()) == pytest.approx(1.0)
    for row in board["rows"]:
        assert weights.get(row["uid"], 0.0) == pytest.approx(row["weight"])
        scored = not row["dies"] and row["run_score"] > 0  # random weights may score 0
        assert (weights.get(row["uid"], 0.0) > 0) == scored, row


def _check_png(path: Path) -> None:
    from matplotlib import image

    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = image.imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] >= 200 and pixels.shape[1] >= 300
    assert pixels.std() > 0  # something is drawn

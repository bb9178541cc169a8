"""The scoreboard of the localnet's run: gathered from the validator database, printed as a
table, and written as JSON and as a PNG chart of ERA5 skill by lead time per miner.

ERA5 skill of a field at a lead is the validator's ``skill`` score component,
1 − RMSE(forecast, ERA5) / RMSE(climatology, ERA5); the skill of a lead shown here is its
plain mean over the scored fields (variables × levels) at that lead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.database.validator_schema import WeatherMinerResponse, WeatherMinerScore
from gaia.localnet.subnet import Subnet
from gaia.tasks.defined_tasks.weather.scoring.records import SUMMARY_VARIABLE, Metric, ScoreKind
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus
from gaia.validator.weights import WeightVector

SKILL_HOW = ("ERA5 skill = 1 - RMSE(forecast, ERA5) / RMSE(climatology, ERA5) per field and "
             "lead; the skill of a lead is the mean over all scored fields at that lead")
TABLE_LEADS = (24, 72, 120, 240)


@dataclass(frozen=True)
class MinerRow:
    role: str
    uid: int
    hotkey: str
    model: str
    dies: bool
    state: MinerResponseStatus | None  # None: the miner was never queried
    failed_step: str | None
    failure_reason: str | None
    day1_score: float | None
    era5_skill_by_lead: dict[int, float]
    run_score: float | None
    weight: float


@dataclass(frozen=True)
class Scoreboard:
    run_id: int
    run_status: RunStatus
    init_time: str
    rows: list[MinerRow]
    weights_file: str | None

    def ranked(self) -> list[MinerRow]:
        return sorted(self.rows, key=lambda r: (r.run_score is None, -(r.run_score or 0.0)))


async def gather(session: AsyncSession, subnet: Subnet, run_id: int, run_status: RunStatus,
                 weights: WeightVector | None, weights_file: Path | None) -> Scoreboard:
    responses = {r.miner_hotkey: r for r in await session.scalars(
        select(WeatherMinerResponse).where(WeatherMinerResponse.run_id == run_id))}
    scores = await session.execute(
        select(WeatherMinerScore.miner_hotkey, WeatherMinerScore.kind, WeatherMinerScore.variable,
               WeatherMinerScore.lead_hours, WeatherMinerScore.metric, WeatherMinerScore.value)
        .where(WeatherMinerScore.run_id == run_id))
    summary: dict[tuple[str, ScoreKind], float] = {}
    skills: dict[str, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    for hotkey, kind, variable, lead, metric, value in scores:
        if value is None:
            continue
        if variable == SUMMARY_VARIABLE and metric == Metric.SCORE.value:
            summary[(hotkey, ScoreKind(kind))] = float(value)
        elif kind == ScoreKind.ERA5 and metric == Metric.SKILL.value:
            skills[hotkey][int(lead)].append(float(value))
    by_uid = dict(zip(weights.uids, weights.weights, strict=True)) if weights else {}
    rows = []
    for miner in subnet.miners:
        assert miner.spec is not None
        response = responses.get(miner.hotkey)
        by_lead = {lead: sum(v) / len(v) for lead, v in sorted(skills[miner.hotkey].items())}
        rows.append(MinerRow(
            miner.spec.role, miner.uid, miner.hotkey, miner.spec.model, miner.spec.dies,
            response.status if response else None,
            response.failed_step if response else None,
            response.failure_reason if response else None,
            summary.get((miner.hotkey, ScoreKind.DAY1)), by_lead,
            summary.get((miner.hotkey, ScoreKind.ROLLUP)), by_uid.get(miner.uid, 0.0)))
    return Scoreboard(run_id, run_status, subnet.archive.init_times[0].isoformat(), rows,
                      None if weights_file is None else str(weights_file))


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_scoreboard(board: Scoreboard) -> str:
    header = ["miner", "uid", "model", "state", "day-1", *(f"skill {h}h" for h in TABLE_LEADS),
              "run score", "weight"]
    cells = [header]
    for row in board.ranked():
        model = row.model + (" (killed)" if row.dies else "")
        state = "not queried" if row.state is None else row.state.value
        cells.append([row.role, str(row.uid), model, state, _number(row.day1_score),
                      *(_number(row.era5_skill_by_lead.get(h)) for h in TABLE_LEADS),
                      _number(row.run_score), _number(row.weight, 4)])
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    failures = [f"  {r.role}: failed at {r.failed_step}: {r.failure_reason}"
                for r in board.rows if r.state is MinerResponseStatus.FAILED]
    notes = [f"run {board.run_id} (hindcast, GFS init {board.init_time}): "
             f"{board.run_status.value}",
             *lines, *(["failures:", *failures] if failures else []), SKILL_HOW + "."]
    return "\n".join(notes)


def write_report(board: Scoreboard, folder: Path) -> tuple[Path, Path]:
    """``scoreboard.json`` and ``skill_by_lead.png`` in ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    json_path, png_path = folder / "scoreboard.json", folder / "skill_by_lead.png"
    document = {**asdict(board), "skill_definition": SKILL_HOW}
    json_path.write_text(json.dumps(document, indent=1))
    _plot(board, png_path)
    return json_path, png_path


def _plot(board: Scoreboard, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5), dpi=100)
    for row in board.ranked():
        if row.era5_skill_by_lead:
            leads = list(row.era5_skill_by_lead)
            axes.plot(leads, list(row.era5_skill_by_lead.values()), marker=".",
                      label=f"{row.role} ({row.model})")
    axes.axhline(0.0, color="grey", linewidth=0.8)
    axes.set_xlabel("lead time (h)")
    axes.set_ylabel("ERA5 skill vs climatology (mean over fields)")
    axes.set_title(f"Localnet run {board.run_id}: skill by lead, GFS init {board.init_time}")
    if any(row.era5_skill_by_lead for row in board.rows):
        axes.legend()
    axes.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)

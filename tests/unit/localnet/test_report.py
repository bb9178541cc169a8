"""The localnet's scoreboard: ranking, the printed table, the JSON and PNG it writes."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from matplotlib import image

from gaia.localnet.report import SKILL_HOW, MinerRow, Scoreboard, format_scoreboard, write_report
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus

S = MinerResponseStatus


def _row(role: str, uid: int, *, score: float | None, state: S | None = S.ERA5_SCORED,
         weight: float = 0.0, dies: bool = False, day1: float | None = 0.5,
         skills: dict[int, float] | None = None, failed_step: str | None = None,
         reason: str | None = None) -> MinerRow:
    return MinerRow(role, uid, f"5{role}", "persistence", dies, state, failed_step, reason,
                    day1, skills or {}, score, weight)


def _board(rows: list[MinerRow], status: RunStatus = RunStatus.COMPLETED) -> Scoreboard:
    return Scoreboard(7, status, "2025-01-01T06:00:00+00:00", rows, None)


def _table(board: Scoreboard) -> list[list[str]]:
    """The table's data rows, split into cells (the header and the rule are skipped)."""
    lines = format_scoreboard(board).splitlines()
    return [line.split() for line in lines[3:3 + len(board.rows)]]


def test_ranked_puts_the_best_run_score_first_and_unscored_miners_last() -> None:
    board = _board([_row("a", 1, score=None), _row("b", 2, score=0.2), _row("c", 3, score=0.9),
                    _row("d", 4, score=0.0)])
    assert [r.role for r in board.ranked()] == ["c", "b", "d", "a"]


def test_table_rows_follow_the_ranking_and_show_missing_values_as_dashes() -> None:
    board = _board([
        _row("weak", 1, score=0.1, weight=0.1, skills={24: -0.25}),
        _row("strong", 2, score=0.8, weight=0.9, skills={24: 0.5, 72: 0.25, 240: 0.125}),
    ])
    weak, strong = _row_cells(board, "weak"), _row_cells(board, "strong")
    assert [cells[0] for cells in _table(board)] == ["strong", "weak"]
    # miner uid model state day-1 skill24 skill72 skill120 skill240 run-score weight
    assert strong == ["strong", "2", "persistence", "era5_scored", "0.500", "0.500", "0.250",
                      "-", "0.125", "0.800", "0.9000"]
    assert weak[5:9] == ["-0.250", "-", "-", "-"]


def _row_cells(board: Scoreboard, role: str) -> list[str]:
    return next(cells for cells in _table(board) if cells[0] == role)


def test_a_miner_never_queried_and_one_killed_are_named_as_such() -> None:
    board = _board([_row("late", 1, score=None, state=None, day1=None),
                    _row("dead", 2, score=None, dies=True, state=S.FAILED, day1=None,
                         failed_step="poll_miner", reason="no forecast in time")])
    text = format_scoreboard(board)
    assert _row_cells(board, "late")[3:7] == ["not", "queried", "-", "-"]
    assert "persistence (killed)  failed" in text
    assert "failures:\n  dead: failed at poll_miner: no forecast in time" in text


def test_no_failure_section_when_every_miner_succeeded() -> None:
    text = format_scoreboard(_board([_row("a", 1, score=0.5)]))
    assert "failures:" not in text
    assert text.splitlines()[0] == (
        "run 7 (hindcast, GFS init 2025-01-01T06:00:00+00:00): completed")
    assert text.splitlines()[-1] == SKILL_HOW + "."


def test_write_report_writes_the_scoreboard_as_json_and_a_chart(tmp_path: Path) -> None:
    board = _board([_row("a", 1, score=0.7, weight=1.0, skills={24: 0.5, 48: 0.25}),
                    _row("b", 2, score=None, state=None, day1=None)], RunStatus.ERROR)
    json_path, png_path = write_report(board, tmp_path / "reports" / "now")
    document = json.loads(json_path.read_text())
    assert document["run_status"] == "error"
    assert document["skill_definition"] == SKILL_HOW
    first, second = document["rows"]
    assert (first["state"], first["era5_skill_by_lead"], first["weight"]) == (
        "era5_scored", {"24": 0.5, "48": 0.25}, 1.0)
    assert (second["state"], second["run_score"], second["day1_score"]) == (None, None, None)
    picture = image.imread(png_path)
    assert picture.shape[:2] == (500, 800)


def test_write_report_draws_a_chart_when_no_miner_has_an_era5_lead(tmp_path: Path) -> None:
    board = _board([_row("a", 1, score=None, state=S.FAILED, day1=None)], RunStatus.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no empty legend
        _, png_path = write_report(board, tmp_path)
    assert png_path.read_bytes().startswith(b"\x89PNG")

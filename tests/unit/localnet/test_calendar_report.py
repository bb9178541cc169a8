"""What the calendar simulation reports: a day's line, the problems of an unhealthy month, its files."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from matplotlib import image

from gaia.localnet.calendar_report import Calendar, DayRecord, RunDay, problems, write_calendar
from gaia.localnet.watch import MinerState, Snapshot
from gaia.tasks.defined_tasks.weather.pipeline.timing import RunTiming
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus

START = datetime(2025, 1, 1, tzinfo=UTC)
TIMING = RunTiming()
INIT = START + timedelta(hours=12)


def _run(status: RunStatus, leads: dict[str, str] | None = None) -> RunDay:
    return RunDay(1, INIT.isoformat(), status, leads or {}, {"era5_scored": 2, "failed": 1})


def _day(date: str, *, weights: dict[str, float] | None = None, submitted: int = 1,
         runs: list[RunDay] | None = None, stranded: list[str] | None = None) -> DayRecord:
    return DayRecord(date, weights, submitted, runs or [], {"miner1": 10}, stranded or [])


def test_day_line_counts_runs_states_leads_of_that_day_and_weights() -> None:
    leads = {"24": "2025-01-07T12:00:00+00:00", "48": "2025-01-08T12:00:00+00:00"}
    day = _day("2025-01-07", weights={"miner2": 0.25, "miner1": 0.75}, submitted=24,
               runs=[_run(RunStatus.SCORING_ERA5, leads), _run(RunStatus.AWAITING_ERA5)])
    assert day.line(7) == (
        "day  7 2025-01-07: 2 runs (awaiting_era5, scoring_era5); miners "
        "{'era5_scored': 4, 'failed': 2}; ERA5 leads scored today 1; weights submitted 24x: "
        "miner1 0.750, miner2 0.250")
    assert _day("2025-01-01", submitted=0).line(1).endswith(
        "0 runs (-); miners {}; ERA5 leads scored today 0; weights submitted 0x: none")


def test_a_healthy_stretch_has_no_problems() -> None:
    last_lead = TIMING.era5_due(INIT, 240)
    days = (last_lead - START).days + 1
    leads = {"240": last_lead.isoformat()}
    calendar = Calendar(START, [_day(f"day{n}") for n in range(days - 1)]
                        + [_day("last", runs=[_run(RunStatus.COMPLETED, leads)])])
    assert problems(calendar, TIMING) == []


def test_problems_name_missing_weights_stranded_work_unfinished_runs_and_late_leads() -> None:
    published = INIT + timedelta(hours=24) + TIMING.era5_delay
    late = (published + timedelta(days=2)).isoformat()
    days = [_day("2025-01-01", submitted=0),
            _day("2025-01-02", stranded=["response 3 (5Abc) still inference_running"])]
    days += [_day(f"2025-01-{n:02}") for n in range(3, 20)]
    days.append(_day("2025-01-20", runs=[_run(RunStatus.SCORING_ERA5, {"24": late})]))
    found = problems(Calendar(START, days), TIMING)
    assert found[0] == "day 1 (2025-01-01): no weights submitted"
    assert found[1] == "day 2: response 3 (5Abc) still inference_running"
    assert found[2].startswith(f"run 1 ({INIT.isoformat()}) is scoring_era5, its last lead")
    assert found[3] == (f"run 1: lead 24 h scored at {late}, more than a day after ERA5 "
                        f"published it ({published.isoformat()})")
    assert len(found) == 4


def test_write_calendar_writes_json_and_the_weights_chart(tmp_path: Path) -> None:
    calendar = Calendar(START, [_day("2025-01-01", weights={"miner1": 1.0}),
                                _day("2025-01-02", weights=None, submitted=0,
                                     runs=[_run(RunStatus.QUERYING_MINERS)])], jumps=12)
    json_path, png_path = write_calendar(calendar, tmp_path / "out")
    document = json.loads(json_path.read_text())
    assert (document["started"], document["clock_jumps"]) == (START.isoformat(), 12)
    assert [day["weights"] for day in document["days"]] == [{"miner1": 1.0}, None]
    assert document["days"][1]["runs"][0]["status"] == "querying_miners"
    assert image.imread(png_path).ndim == 3


def test_snapshot_is_finished_only_in_a_terminal_run_status() -> None:
    waiting = Snapshot(None, None, None)
    assert (waiting.finished, waiting.run_label) == (False, "waiting")
    for status in RunStatus:
        snapshot = Snapshot(1, status, None, {"5A": MinerState(MinerResponseStatus.FAILED)})
        assert snapshot.finished is (status in {RunStatus.COMPLETED, RunStatus.ERROR}), status
        assert snapshot.run_label == status.value

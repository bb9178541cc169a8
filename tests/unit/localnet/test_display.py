"""The localnet's progress display: plain lines on a change of state, the live table's cells."""

from __future__ import annotations

import io
import time

from rich.console import Console

from gaia.localnet.display import LiveDisplay, MinerLabel, PlainDisplay
from gaia.localnet.watch import MinerState, Snapshot
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus

S = MinerResponseStatus
LABELS = [MinerLabel("5A", "miner1", "persistence", 1), MinerLabel("5B", "miner2", "dying", 2)]


def _snapshot(run: RunStatus | None, miners: dict[str, MinerState] | None = None,
              jobs: dict[str, int] | None = None) -> Snapshot:
    return Snapshot(None if run is None else 3, run, None, miners or {}, jobs or {})


def _messages(out: io.StringIO) -> list[str]:
    """Each printed line without its ``[  12.3s]`` time stamp."""
    return [line.split("] ", 1)[1] for line in out.getvalue().splitlines()]


def test_plain_display_prints_a_line_only_when_a_state_changes() -> None:
    out = io.StringIO()
    display = PlainDisplay(LABELS, time.monotonic(), out)
    running = {"5A": MinerState(S.INFERENCE_RUNNING)}
    display.update(_snapshot(None))
    display.update(_snapshot(None, jobs={"queued": 1}))  # jobs alone are no change
    display.update(_snapshot(RunStatus.QUERYING_MINERS, running, {"running": 2, "queued": 5}))
    display.update(_snapshot(RunStatus.QUERYING_MINERS, running, {"running": 1}))
    display.update(_snapshot(RunStatus.QUERYING_MINERS, {
        "5A": MinerState(S.INFERENCE_RUNNING), "5B": MinerState(S.FAILED, "poll_miner", "late")}))
    assert _messages(out) == [
        "run waiting | miner1=- miner2=- | jobs none yet",
        "run querying_miners | miner1=inference_running miner2=- | jobs queued=5 running=2",
        "run querying_miners | miner1=inference_running miner2=failed | jobs none yet",
    ]


def test_plain_display_notes_carry_the_time_since_start() -> None:
    out = io.StringIO()
    PlainDisplay(LABELS, time.monotonic() - 90.0, out).note("miner4 was killed")
    stamp, message = out.getvalue().rstrip("\n").split("] ", 1)
    assert message == "miner4 was killed"
    assert stamp.startswith("[") and float(stamp[1:-1]) >= 90.0


def _rendered(display: LiveDisplay) -> str:
    console = Console(file=io.StringIO(), width=160, color_system=None)
    console.print(display._render())
    assert isinstance(console.file, io.StringIO)
    return console.file.getvalue()


def test_live_table_shows_states_and_the_short_failure_reason() -> None:
    display = LiveDisplay(LABELS, time.monotonic(),
                          Console(file=io.StringIO(), color_system=None))
    assert "run: starting" in _rendered(display)
    display.update(_snapshot(RunStatus.SCORING_DAY1, {
        "5A": MinerState(S.DAY1_SCORED),
        "5B": MinerState(S.FAILED, "poll_miner", "no forecast in time (10 failed polls)")},
        {"succeeded": 4}))
    text = _rendered(display)
    assert "run 3: scoring_day1" in text
    miner1 = next(line for line in text.splitlines() if "miner1" in line)
    miner2 = next(line for line in text.splitlines() if "miner2" in line)
    assert "day1_scored" in miner1
    assert "failed" in miner2 and "poll_miner: no forecast in time" in miner2
    assert "10 failed polls" not in text
    assert "jobs: succeeded=4" in text

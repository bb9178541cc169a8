"""Progress of the run: a live table on a terminal (rich, redrawn every second), plain log
lines when the output is not a terminal (one line whenever a state changes)."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TextIO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from gaia.localnet.subnet import Member
from gaia.localnet.watch import Snapshot
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus

S = MinerResponseStatus
STATE_STYLES = {S.ERA5_SCORED: "green", S.FAILED: "red", S.DAY1_SCORED: "cyan"}


@dataclass(frozen=True)
class MinerLabel:
    hotkey: str
    role: str
    model: str
    uid: int


def labels_of(miners: Sequence[Member]) -> list[MinerLabel]:
    return [MinerLabel(m.hotkey, m.spec.role, m.spec.model + (" (dies)" if m.spec.dies else ""),
                       m.uid) for m in miners if m.spec is not None]


def _jobs_line(snapshot: Snapshot) -> str:
    return " ".join(f"{state}={n}" for state, n in sorted(snapshot.jobs.items())) or "none yet"


class PlainDisplay:
    """One line per change of run or miner state: ``[  12.3s] run querying_miners | …``."""

    def __init__(self, labels: Sequence[MinerLabel], started: float,
                 out: TextIO = sys.stdout) -> None:
        self.labels, self.out, self.started = list(labels), out, started
        self._last: tuple[str, ...] | None = None

    def __enter__(self) -> PlainDisplay:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def note(self, message: str) -> None:
        print(f"[{time.monotonic() - self.started:6.1f}s] {message}", file=self.out, flush=True)

    def update(self, snapshot: Snapshot) -> None:
        states = tuple(snapshot.miners[label.hotkey].status.value if label.hotkey in snapshot.miners
                       else "-" for label in self.labels)
        key = (snapshot.run_label, *states)
        if key == self._last:
            return
        self._last = key
        miners = " ".join(f"{label.role}={state}" for label, state in zip(self.labels, states,
                                                                            strict=True))
        self.note(f"run {snapshot.run_label} | {miners} | jobs {_jobs_line(snapshot)}")


class LiveDisplay(PlainDisplay):
    """A table redrawn in place about once a second; notes scroll above it."""

    def __init__(self, labels: Sequence[MinerLabel], started: float,
                 console: Console | None = None) -> None:
        super().__init__(labels, started)
        self.console = console or Console()
        self.snapshot: Snapshot | None = None
        self.live = Live(self._render(), console=self.console, refresh_per_second=1,
                         transient=False)

    def __enter__(self) -> LiveDisplay:
        self.live.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.live.__exit__(kind, error, tb)

    def note(self, message: str) -> None:
        self.console.print(f"[dim]{time.monotonic() - self.started:6.1f}s[/dim] {message}",
                           highlight=False)

    def update(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot
        self.live.update(self._render())

    def _render(self) -> Group:
        snapshot = self.snapshot
        elapsed = time.monotonic() - self.started
        status = snapshot.run_label if snapshot else "starting"
        run = f"run {snapshot.run_id}" if snapshot and snapshot.run_id else "run"
        table = Table(title=f"{run}: [bold]{status}[/bold]   ({elapsed:.0f} s)",
                      title_justify="left")
        for column in ("miner", "uid", "model", "state", "detail"):
            table.add_column(column)
        for label in self.labels:
            state = snapshot.miners.get(label.hotkey) if snapshot else None
            name = state.status.value if state else "-"
            detail = "" if state is None or state.failure_reason is None else (
                f"{state.failed_step}: {state.failure_reason.split(' (')[0]}")[:60]
            table.add_row(label.role, str(label.uid), label.model,
                          Text(name, style=STATE_STYLES.get(state.status, "") if state else ""),
                          detail)
        jobs = Text(f"jobs: {_jobs_line(snapshot) if snapshot else 'none yet'}", style="dim")
        return Group(table, jobs)


def make_display(labels: Sequence[MinerLabel], started: float, force_plain: bool = False
                 ) -> PlainDisplay:
    """The live table on a terminal, plain lines otherwise (or when ``force_plain``);
    times are shown in seconds since ``started`` (``time.monotonic()``)."""
    if not force_plain and sys.stdout.isatty():
        return LiveDisplay(labels, started)
    return PlainDisplay(labels, started)

"""What each previous row becomes: pure functions over plain records (ADOPTION.md)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from gaia.database.previous_validator import statuses as st
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, rolled_up_run_status

FAILED_STEP = "previous_validator"
SEED_JOB, QUERY_JOB, POLL_JOB = "weather.seed", "weather.query_miner", "weather.poll_miner"


@dataclass(frozen=True)
class PreviousResponse:
    id: int
    run_id: int
    miner_hotkey: str
    status: str
    error_message: str | None
    job_id: str | None
    day1_score: float | None  # its latest day1_qc_score
    era5_score: float | None  # its latest era5_final_composite_score


@dataclass(frozen=True)
class AdoptedResponse:
    status: str
    failure_reason: str | None = None
    resume_with: str | None = None  # the job that takes it up, for one still running


@dataclass(frozen=True)
class AdoptedRun:
    status: str
    error: str | None
    resume_with: str | None = None


def adopt_response(old: PreviousResponse, deadline_passed: bool) -> AdoptedResponse:
    """A failure stays a failure with its old status in the reason; a forecast the previous
    validator scored through ERA5 is scored; one still running is resumed while its run's
    commit deadline is ahead, else closed as late; one day-1 scored but not through ERA5 is
    closed, since no signed manifest lets this validator read it."""
    new = st.RESPONSE_STATUSES[old.status]
    if new == st.FAILED:
        detail = f": {old.error_message}" if old.error_message else ""
        return AdoptedResponse(st.FAILED, f"previous validator: {old.status}{detail}")
    if old.era5_score is not None:
        return AdoptedResponse(st.ERA5_SCORED)
    if old.day1_score is not None:
        return AdoptedResponse(st.FAILED, f"previous validator: {old.status} and day-1 scored; "
                                          f"ERA5 scoring cannot go on without a signed manifest")
    if deadline_passed:
        return AdoptedResponse(st.FAILED, f"late: the previous validator left it {old.status} "
                                          f"and the commit deadline passed before adoption")
    if new == st.CREATED or old.job_id is None:  # never got a job id: ask the miner again
        return AdoptedResponse(st.CREATED, resume_with=QUERY_JOB)
    return AdoptedResponse(new, resume_with=POLL_JOB)


def adopt_run(
    status: str, error_message: str | None, deadline_passed: bool, responses: Sequence[str]
) -> AdoptedRun:
    """The roll-up of its responses; without responses, a run still in its commit window starts
    over from seeding, and any other is an error."""
    if responses:
        rolled = rolled_up_run_status(MinerResponseStatus(s) for s in responses)
        return AdoptedRun(rolled.value, error_message)
    if not deadline_passed:
        return AdoptedRun("created", error_message, resume_with=SEED_JOB)
    return AdoptedRun("error", error_message or f"previous validator: {status}, no miner responses")


@dataclass(frozen=True)
class PreviousRun:
    id: int
    gfs_init_time: datetime
    status: str
    responses: int


@dataclass(frozen=True)
class RunConflict:
    """Runs for one GFS init time that cannot be merged: ``keep`` and the others with responses."""

    gfs_init_time: datetime
    keep: PreviousRun
    others: tuple[PreviousRun, ...]


def _preference(run: PreviousRun) -> tuple[bool, int, int]:
    return run.status != st.ABANDONED_RUN_STATUS, run.responses, run.id


def choose_runs(runs: Iterable[PreviousRun]) -> tuple[set[int], list[RunConflict]]:
    """One run per GFS init time: the one not abandoned, with most responses, latest. The
    others stay in the previous tables only; that is safe when they have no responses."""
    by_init: dict[datetime, list[PreviousRun]] = {}
    for run in runs:
        by_init.setdefault(run.gfs_init_time, []).append(run)
    carried: set[int] = set()
    conflicts: list[RunConflict] = []
    for init, group in sorted(by_init.items()):
        keep = max(group, key=_preference)
        carried.add(keep.id)
        others = tuple(r for r in group if r is not keep and r.responses)
        if others:
            conflicts.append(RunConflict(init, keep, others))
    return carried, conflicts

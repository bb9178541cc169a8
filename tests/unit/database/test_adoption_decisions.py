"""What a previous validator's row becomes, decided without a database (ADOPTION.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gaia.database.previous_validator import statuses as st
from gaia.database.previous_validator.decisions import (
    POLL_JOB,
    QUERY_JOB,
    SEED_JOB,
    AdoptedResponse,
    AdoptedRun,
    PreviousResponse,
    PreviousRun,
    adopt_response,
    adopt_run,
    choose_runs,
)
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus, RunStatus

INIT = datetime(2025, 11, 1, 12, tzinfo=UTC)


def _response(status: str, *, job_id: str | None = "j", error: str | None = None,
              day1: float | None = None, era5: float | None = None) -> PreviousResponse:
    return PreviousResponse(1, 1, "5Hk", status, error, job_id, day1, era5)


def test_the_mapping_lands_on_this_projects_states_only() -> None:
    assert set(st.RESPONSE_STATUSES.values()) <= {s.value for s in MinerResponseStatus}
    assert set(st.RESPONSE_STATUSES_BACK) == {s.value for s in MinerResponseStatus}
    assert set(st.RUN_STATUSES_BACK) == {s.value for s in RunStatus}
    assert "verified_manifest_store_opened" not in st.RESPONSE_STATUSES_BACK.values()


def test_a_failure_keeps_its_old_status_and_message() -> None:
    assert adopt_response(_response("verification_timeout", error="slow"), False) == (
        AdoptedResponse("failed", "previous validator: verification_timeout: slow"))


def test_a_running_miner_is_resumed_inside_the_commit_window_and_late_after_it() -> None:
    assert adopt_response(_response("verifying_manifest"), False) == AdoptedResponse(
        "inference_running", resume_with=POLL_JOB)
    assert adopt_response(_response("received"), False) == AdoptedResponse(
        "created", resume_with=QUERY_JOB)
    assert adopt_response(_response("inference_running", job_id=None), False) == AdoptedResponse(
        "created", resume_with=QUERY_JOB)
    late = adopt_response(_response("forecast_ready"), True)
    assert late.status == "failed" and late.failure_reason.startswith("late:")


def test_scores_decide_a_forecast_the_previous_validator_scored() -> None:
    assert adopt_response(_response("verified_manifest_store_opened", day1=0.5, era5=0.7),
                          True) == AdoptedResponse("era5_scored")
    half = adopt_response(_response("verified_manifest_store_opened", day1=0.5), False)
    assert half.status == "failed" and "day-1 scored" in half.failure_reason


def test_runs_roll_up_their_responses_or_start_over_in_their_window() -> None:
    assert adopt_run("scored", "text", True, ["era5_scored", "failed"]) == AdoptedRun(
        "completed", "text")
    assert adopt_run("awaiting_results", None, False, ["inference_running", "failed"]) == (
        AdoptedRun("querying_miners", None))
    assert adopt_run("seeding", None, False, []) == AdoptedRun("created", None, SEED_JOB)
    assert adopt_run("stale_abandoned", None, True, []) == AdoptedRun(
        "error", "previous validator: stale_abandoned, no miner responses")


def test_one_run_per_init_time_and_conflicts_only_when_both_have_responses() -> None:
    later = INIT + timedelta(days=1)
    runs = [PreviousRun(1, INIT, "stale_abandoned", 0), PreviousRun(2, INIT, "scored", 3),
            PreviousRun(3, later, "stale_abandoned", 2), PreviousRun(4, later, "failed", 1)]
    carried, conflicts = choose_runs(runs)
    assert carried == {2, 4}
    assert [(c.keep.id, [o.id for o in c.others]) for c in conflicts] == [(4, [3])]

"""Every status the previous validator writes, and where each lands (ADOPTION.md explains why).

Strings, not this project's enums: a migration means the values as they were when it was
written. ``statuses.md`` of the previous release lists the values and the code that writes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

# Response statuses this project knows (revision 0002's enum).
CREATED, FETCH_INITIATED, INFERENCE_RUNNING = "created", "fetch_initiated", "inference_running"
FORECAST_READY, DAY1_SCORING, DAY1_SCORED = "forecast_ready", "day1_scoring", "day1_scored"
ERA5_SCORING, ERA5_SCORED, FAILED = "era5_scoring", "era5_scored", "failed"

RESPONSE_STATUSES: Final[Mapping[str, str]] = {
    # Still running: the same stage of this project's state machine.
    "received": CREATED,
    "fetch_initiated": FETCH_INITIATED,
    "input_validation_complete": FETCH_INITIATED,  # input-hash flow: inference not triggered yet
    "inference_triggered": INFERENCE_RUNNING,
    "inference_running": INFERENCE_RUNNING,
    "awaiting_miner_completion": INFERENCE_RUNNING,
    "retry_scheduled": INFERENCE_RUNNING,  # the miner said "still working"; poll again later
    # A forecast the miner calls ready but that no signed manifest commits: forecast_ready
    # needs a manifest_hash, so these wait where a poll fetches one.
    "forecast_ready": INFERENCE_RUNNING,
    "forecast_submitted": INFERENCE_RUNNING,
    "verifying_manifest": INFERENCE_RUNNING,
    "verified_manifest_store_opened": INFERENCE_RUNNING,
    # Failures: failed, the old status kept in failure_reason.
    "failed": FAILED,
    "era5_scoring_failed": FAILED,
    "input_fetch_error": FAILED,
    "miner_offline": FAILED,
    "verification_error": FAILED,
    "verification_failed": FAILED,
    "verification_timeout": FAILED,
}

# Run statuses. A run's new status is the roll-up of its responses, whatever the old value
# says; a run without responses starts over while its commit window is open, else is `error`.
RUN_STATUSES: Final = frozenset({
    # before fan-out
    "pending", "created", "seeding", "gfs_ready",
    # fanned out, miners running or being scored
    "querying_miners", "awaiting_results", "scoring", "awaiting_input_hashes",
    "verifying_input_hashes", "triggering_inference", "awaiting_inference_results",
    "verifying_miner_forecasts", "day1_scoring_started", "day1_scoring_complete",
    "initial_scoring_queued", "final_scoring_triggered", "era5_final_scoring_started",
    "era5_final_scoring_partial", "scored",
    # failed or abandoned
    "all_forecasts_failed_verification", "all_miners_failed", "day1_scoring_failed", "error",
    "failed", "final_scoring_failed", "hash_verification_failed", "inference_trigger_failed",
    "initial_scoring_failed", "initial_scoring_skipped", "no_matching_hashes",
    "no_miners_to_poll", "recovery_failed", "stale_abandoned", "stalled_no_valid_forecasts",
    "workflow_continuation_failed",
})
ABANDONED_RUN_STATUS: Final = "stale_abandoned"

# Back to the previous validator, for rows this project created or moved after adopting.
# Nothing goes back as verified: a forecast this project committed is `forecast_ready` to the
# previous code, which then verifies it by its own rules before it scores anything.
RESPONSE_STATUSES_BACK: Final[Mapping[str, str]] = {
    CREATED: "received",
    FETCH_INITIATED: "fetch_initiated",
    INFERENCE_RUNNING: "inference_running",
    FORECAST_READY: "forecast_ready",
    DAY1_SCORING: "forecast_ready",
    DAY1_SCORED: "forecast_ready",
    ERA5_SCORING: "forecast_ready",
    ERA5_SCORED: "forecast_ready",
    FAILED: "failed",
}
RUN_STATUSES_BACK: Final[Mapping[str, str]] = {
    "created": "seeding",
    "gfs_downloading": "seeding",
    "gfs_ready": "gfs_ready",
    "querying_miners": "querying_miners",
    "scoring_day1": "scoring",
    "awaiting_era5": "day1_scoring_complete",
    "scoring_era5": "era5_final_scoring_started",
    "completed": "scored",
    "error": "failed",
}

# The previous validator's per-run scores: what its weights were made of.
DAY1_SCORE_TYPE: Final = "day1_qc_score"
ERA5_SCORE_TYPE: Final = "era5_final_composite_score"

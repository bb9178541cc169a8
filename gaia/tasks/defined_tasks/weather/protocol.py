"""Validator <-> miner messages of the weather task (docs/ARCHITECTURE.md, "Protocol").

Shared by the miner's routes and the validator's client, so both sides validate the same
way. Requests are strict (unknown fields, naive datetimes and off-cycle init times are
refused); responses are what the miner promises to send.

What a forecast contains is fixed by ``PROTOCOL_VERSION`` (variables, levels and leads in
``variables.py``), not by the request.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS, PROTOCOL_VERSION

CYCLE_HOURS: Final[tuple[int, ...]] = (0, 6, 12, 18)
GRID_DEG: Final = 0.25  # a forecast's global grid (GFS and ERA5: 90..-90, 0..359.75), the
# default of validator.grid_deg, which each run records and checks commitments against
SS58_PATTERN: Final = r"^[1-9A-HJ-NP-Za-km-z]{46,48}$"
JOB_ID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
SHA256_PATTERN: Final = r"^[0-9a-f]{64}$"
MAX_MINER_ERROR_CHARS: Final = 2000  # a miner job's ``error`` as the status route reports it

_JOB_NAMESPACE: Final = uuid.UUID("6b1d4c1e-3f52-5a7c-9a55-9f4c8e0f7a21")

INITIATE_FETCH_PATH: Final = "/weather/initiate-fetch"


def job_status_path(job_id: str) -> str:
    return f"/weather/jobs/{job_id}"


def manifest_url_path(job_id: str) -> str:
    return f"/weather/forecasts/{job_id}/manifest.json"


def forecast_file_path(job_id: str, key: str) -> str:
    return f"/weather/forecasts/{job_id}/{key}"


class MinerJobStatus(StrEnum):
    """The closed set of states of a miner's forecast job."""

    FETCHING_INPUTS = "fetching_inputs"
    INFERENCE_RUNNING = "inference_running"
    FORECAST_READY = "forecast_ready"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (MinerJobStatus.FORECAST_READY, MinerJobStatus.FAILED)


# what the protocol sends: ISO 8601 with a "T", seconds optional, offset "Z" or +hh:mm
_ISO_DATETIME: Final = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?"
)


def iso_form(value: object) -> object:
    """Only the documented ISO form (or a datetime built in Python): pydantic would also
    take Unix seconds, as a number or a string of digits."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and _ISO_DATETIME.fullmatch(value):
        return value
    raise ValueError(
        f"gfs_init_time must be an ISO 8601 datetime such as 2026-11-20T06:00:00Z, got {value!r}"
    )


def check_cycle_time(value: datetime) -> datetime:
    """A GFS cycle: timezone-aware UTC, on 00/06/12/18 h exactly; returned in UTC."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"gfs_init_time {value.isoformat()} has no timezone; send UTC ('Z')")
    value = value.astimezone(UTC)
    if value.hour not in CYCLE_HOURS or (value.minute, value.second, value.microsecond) != (
        0,
        0,
        0,
    ):
        raise ValueError(
            f"gfs_init_time {value.isoformat()} is not a 6-hourly GFS cycle (00, 06, 12, 18 UTC)"
        )
    return value


CycleTime = Annotated[datetime, BeforeValidator(iso_form), AfterValidator(check_cycle_time)]
Hotkey = Annotated[str, Field(pattern=SS58_PATTERN)]
JobId = Annotated[str, Field(pattern=JOB_ID_PATTERN)]
Sha256Hex = Annotated[str, Field(pattern=SHA256_PATTERN)]


def job_id_for(miner_hotkey: str, gfs_init_time: datetime) -> str:
    """The deterministic job id of one miner's forecast from one GFS cycle.

    Every validator (and every retry) asking the same miner for the same cycle gets the same
    id, so one inference serves them all.
    """
    init = check_cycle_time(gfs_init_time).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(uuid.uuid5(_JOB_NAMESPACE, f"{miner_hotkey}/{init}"))


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InitiateFetchRequest(_Message):
    """Ask the miner to forecast from one GFS cycle; it starts at once."""

    gfs_init_time: CycleTime
    expected_miner_hotkey: Hotkey
    protocol_version: Literal["2"] = PROTOCOL_VERSION


class InitiateFetchResponse(_Message):
    job_id: JobId
    status: MinerJobStatus


class JobProgress(_Message):
    leads_done: int = Field(ge=0, le=len(FORECAST_LEAD_HOURS))
    leads_total: int = Field(ge=0, le=len(FORECAST_LEAD_HOURS))

    @model_validator(mode="after")
    def _done_within_total(self) -> JobProgress:
        if self.leads_done > self.leads_total:
            raise ValueError(f"leads_done {self.leads_done} exceeds leads_total {self.leads_total}")
        return self


class JobStatusResponse(_Message):
    """A job's state; ``error`` only when failed, manifest fields only when ready."""

    job_id: JobId
    gfs_init_time: CycleTime
    status: MinerJobStatus
    progress: JobProgress
    error: Annotated[str, Field(max_length=MAX_MINER_ERROR_CHARS)] | None = None
    manifest_hash: Sha256Hex | None = None
    manifest_url: str | None = None

    @model_validator(mode="after")
    def _fields_match_status(self) -> JobStatusResponse:
        ready = self.status is MinerJobStatus.FORECAST_READY
        if ready != (self.manifest_hash is not None and self.manifest_url is not None):
            raise ValueError("manifest_hash and manifest_url are set exactly when forecast_ready")
        if (self.status is MinerJobStatus.FAILED) != (self.error is not None):
            raise ValueError("error is set exactly when the job failed")
        return self


class ErrorResponse(_Message):
    """Every non-2xx answer of the miner: a stable code and a human-readable message."""

    error: str
    message: str

"""Typed payloads of the weather pipeline's jobs (stored as JSON in ``validator_jobs``)."""

from __future__ import annotations

from pydantic import AwareDatetime, BaseModel, ConfigDict

from gaia.tasks.defined_tasks.weather.states import RunMode


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RunCreatePayload(_Payload):
    init_time: AwareDatetime
    mode: RunMode
    commit_deadline: AwareDatetime


class RunPayload(_Payload):
    run_id: int


class ResponsePayload(_Payload):
    run_id: int
    response_id: int
    miner_hotkey: str


class PeriodicPayload(_Payload):
    slot: str

"""The miner's weather routes (docs/ARCHITECTURE.md, "Protocol"). The miner's app includes
:data:`router` through the entry point the plan names,
:mod:`gaia.tasks.defined_tasks.weather.weather_task`.

Every route authenticates its caller first (``CallerDep``); the request body is parsed only
after that, so an unsigned or refused request gets 401/403 whatever it carries. Routes only
delegate: the work is in :mod:`gaia.miner.jobs` and :mod:`gaia.miner.forecasts`.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse

from gaia.miner.deps import CallerDep, FileReaderDep, ServicesDep
from gaia.tasks.defined_tasks.weather.protocol import (
    ErrorResponse,
    InitiateFetchRequest,
    InitiateFetchResponse,
    JobStatusResponse,
)

_REFUSALS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 409, 413, 422, 429)
}


async def _initiate_body(request: Request, _caller: CallerDep) -> InitiateFetchRequest:
    return InitiateFetchRequest.model_validate_json(await request.body())


InitiateBody = Annotated[InitiateFetchRequest, Depends(_initiate_body)]

jobs_router = APIRouter(prefix="/weather", tags=["jobs"], responses=_REFUSALS)
forecasts_router = APIRouter(prefix="/weather/forecasts", tags=["forecasts"], responses=_REFUSALS)


@jobs_router.post(
    "/initiate-fetch",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": InitiateFetchRequest.model_json_schema()}},
        }
    },
)
async def initiate_fetch(
    body: InitiateBody, caller: CallerDep, services: ServicesDep
) -> InitiateFetchResponse:
    """Record the job for this GFS cycle and start inference at once (same cycle, same job)."""
    return await services.jobs.initiate(body, caller)


@jobs_router.get("/jobs/{job_id}")
async def job_status(job_id: str, _caller: CallerDep, services: ServicesDep) -> JobStatusResponse:
    """The job's state and progress; a failed job answers 200 with its reason."""
    return await services.jobs.status(job_id)


@forecasts_router.get("/{job_id}/manifest.json")
@forecasts_router.head("/{job_id}/manifest.json")
async def forecast_manifest(
    job_id: str, _caller: FileReaderDep, services: ServicesDep
) -> FileResponse:
    """The signed manifest of a ready forecast."""
    return FileResponse(await services.forecasts.manifest(job_id), media_type="application/json")


@forecasts_router.get("/{job_id}/{key:path}")
@forecasts_router.head("/{job_id}/{key:path}")
async def forecast_file(
    job_id: str, key: str, _caller: FileReaderDep, services: ServicesDep
) -> FileResponse:
    """One file listed in the manifest (Range requests supported)."""
    path = await services.forecasts.file(job_id, key)
    return FileResponse(path, media_type="application/octet-stream")


router = APIRouter()
router.include_router(jobs_router)
router.include_router(forecasts_router)

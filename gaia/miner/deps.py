"""FastAPI dependencies of the miner: its services and the authenticated caller."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from gaia.miner.auth import Authenticator, RateBucket, SignedRequest
from gaia.miner.connections import address_key
from gaia.miner.forecasts import ForecastFiles
from gaia.miner.jobs import JobService


@dataclass(frozen=True)
class MinerServices:
    """Everything the routes call; built by the app's lifespan."""

    own_hotkey: str
    authenticator: Authenticator
    jobs: JobService
    forecasts: ForecastFiles


def get_services(request: Request) -> MinerServices:
    services: MinerServices = request.app.state.services
    return services


ServicesDep = Annotated[MinerServices, Depends(get_services)]


def request_target(request: Request) -> str:
    """The request target exactly as the client sent (and signed) it: raw path plus query."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    target = raw_path.decode("latin-1")
    return f"{target}?{query.decode('latin-1')}" if query else target


async def _authenticate(request: Request, services: MinerServices, bucket: RateBucket) -> str:
    signed = SignedRequest(
        method=request.method,
        target=request_target(request),
        client=address_key(request.client.host if request.client else ""),
        headers=request.headers,
        body=await request.body(),
    )
    return await services.authenticator.authenticate(signed, bucket)


async def api_caller(request: Request, services: ServicesDep) -> str:
    """The caller's hotkey once signature, replay, API rate and standing checks pass."""
    return await _authenticate(request, services, RateBucket.API)


async def file_reader(request: Request, services: ServicesDep) -> str:
    """Like :func:`api_caller`, counted against the forecast-file rate budget."""
    return await _authenticate(request, services, RateBucket.FILES)


CallerDep = Annotated[str, Depends(api_caller)]
FileReaderDep = Annotated[str, Depends(file_reader)]

"""The miner's FastAPI app factory: routes, error mapping, body limit, lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from gaia.config import Settings
from gaia.miner.body_limit import BodyLimitMiddleware
from gaia.miner.errors import MinerHTTPError
from gaia.miner.metrics import RequestMetricsMiddleware
from gaia.miner.observability import MinerProbe, model_identity, operations_router
from gaia.miner.runtime import MinerRuntime
from gaia.tasks.defined_tasks.weather import weather_task
from gaia.tasks.defined_tasks.weather.protocol import ErrorResponse


def _error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(error=code, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


async def _miner_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, MinerHTTPError)
    return _error(exc.status_code, exc.code, exc.message, exc.headers)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ValidationError | RequestValidationError)
    details = "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or 'body'}: {err['msg']}" for err in exc.errors()
    )
    return _error(422, "invalid_request", details)


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    return _error(exc.status_code, "http_error", str(exc.detail), dict(exc.headers or {}))


def create_app(settings: Settings, runtime: MinerRuntime | None = None) -> FastAPI:
    """The miner's ASGI app; its lifespan starts and stops a :class:`MinerRuntime`."""
    runtime = runtime or MinerRuntime(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with runtime.running() as services:
            app.state.services = services
            yield

    # API docs describe every route to anyone who asks: off unless the operator wants them
    docs = settings.miner.api_docs
    app = FastAPI(
        title="Gaia weather miner",
        lifespan=lifespan,
        openapi_url="/openapi.json" if docs else None,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
    )
    app.include_router(weather_task.router)  # the signed /weather routes
    app.include_router(operations_router)  # /metrics and /healthz, unsigned
    app.state.probe = MinerProbe(runtime.db, runtime.metrics, settings.miner.model,
                                 model_identity(runtime.model))
    app.add_exception_handler(MinerHTTPError, _miner_error)
    app.add_exception_handler(ValidationError, _invalid_request)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.miner.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=runtime.metrics)  # outermost
    return app

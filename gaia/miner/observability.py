"""``GET /metrics`` and ``GET /healthz`` on the miner's own port, unsigned.

Neither route asks for a signature (Prometheus and process supervisors do not sign), but
both sit behind the same connection caps and request read deadline as every other route
(:mod:`gaia.miner.connections`, below the app). Each reads one grouped count of the jobs
table, within ``DATABASE_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError

from gaia.miner.database import MinerDatabase
from gaia.miner.metrics import MinerMetrics

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 5.0


def model_identity(model: object) -> dict[str, str] | None:
    """The model's ``identity`` (variant, checkpoint hash, …) as strings; None without one."""
    identity = getattr(model, "identity", None)
    if not isinstance(identity, Mapping):
        return None
    return {str(key): str(value) for key, value in identity.items()}


@dataclass(frozen=True)
class MinerProbe:
    db: MinerDatabase
    metrics: MinerMetrics
    model_name: str
    model_identity: dict[str, str] | None

    async def job_states(self) -> dict[str, int] | None:
        """Jobs by state, also shown in the metrics; None when the database does not answer."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_S):
                counts: dict[str, int] | None = {
                    status.value: n for status, n in (await self.db.count_by_status()).items()
                }
        except (OSError, DBAPIError, TimeoutError) as error:
            log.warning("health: the database did not answer: %s", type(error).__name__)
            counts = None
        self.metrics.show_job_states(counts)
        return counts

    def health(self, counts: dict[str, int] | None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "status": "ok" if counts is not None else "unhealthy",
            "database": "ok" if counts is not None else "unreachable",
            "model": self.model_name,
        }
        if self.model_identity is not None:
            body["model_identity"] = self.model_identity
        return body


def get_probe(request: Request) -> MinerProbe:
    probe: MinerProbe = request.app.state.probe
    return probe


ProbeDep = Annotated[MinerProbe, Depends(get_probe)]

operations_router = APIRouter(tags=["operations"])


@operations_router.get("/metrics")
async def metrics(probe: ProbeDep) -> Response:
    """Prometheus text format: requests, refusals, inference time per lead, jobs."""
    await probe.job_states()
    return Response(generate_latest(probe.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@operations_router.get("/healthz")
async def healthz(probe: ProbeDep) -> JSONResponse:
    """200 while the database answers, else 503; names the model."""
    counts = await probe.job_states()
    return JSONResponse(probe.health(counts), status_code=200 if counts is not None else 503)

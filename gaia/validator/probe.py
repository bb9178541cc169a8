"""What the validator's listener answers: ``/metrics`` and ``/healthz``.

Both read the database when asked (a few grouped counts on the queue, runs and responses),
within ``DATABASE_TIMEOUT_S``. ``/healthz`` is 503 when the database does not answer, or
when a due job has waited longer than ``unclaimed_after_s`` for a worker and this process's
worker has claimed nothing for as long (a backlog that workers are working through is not
a stuck process; a worker that stopped claiming is).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from gaia.clock import Now
from gaia.config import MetricsSettings
from gaia.validator.listener import Listener, Reply, Route
from gaia.validator.metrics import DatabaseSnapshot, ValidatorMetrics, read_snapshot

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Health:
    database_ok: bool
    queue_lag_s: float | None  # None: the database did not answer
    since_claim_s: float
    unclaimed_after_s: float

    @property
    def problems(self) -> list[str]:
        if not self.database_ok:
            return ["database unreachable"]
        lag = self.queue_lag_s or 0.0
        if lag > self.unclaimed_after_s and self.since_claim_s > self.unclaimed_after_s:
            return [f"a due job has waited {lag:.0f} s and this worker claimed nothing for "
                    f"{self.since_claim_s:.0f} s (threshold {self.unclaimed_after_s:g} s)"]
        return []

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "problems": self.problems,
            "database": "ok" if self.database_ok else "unreachable",
            "queue_lag_s": self.queue_lag_s,
            "since_last_claim_s": round(self.since_claim_s, 3),
            "unclaimed_after_s": self.unclaimed_after_s,
        }


def assess(
    snapshot: DatabaseSnapshot | None, *, last_claim_at: datetime, now: datetime,
    unclaimed_after_s: float,
) -> Health:
    return Health(
        database_ok=snapshot is not None,
        queue_lag_s=None if snapshot is None else snapshot.queue_lag_s,
        since_claim_s=max(0.0, (now - last_claim_at).total_seconds()),
        unclaimed_after_s=unclaimed_after_s,
    )


class ValidatorProbe:
    def __init__(
        self, metrics: ValidatorMetrics, session_factory: async_sessionmaker[AsyncSession],
        clock: Now, *, unclaimed_after_s: float,
    ) -> None:
        self._metrics = metrics
        self._session_factory = session_factory
        self._clock = clock
        self._unclaimed_after_s = unclaimed_after_s

    async def snapshot(self) -> DatabaseSnapshot | None:
        """Read the database's series now and expose them; None when it does not answer."""
        try:
            async with asyncio.timeout(DATABASE_TIMEOUT_S), self._session_factory() as session:
                snapshot: DatabaseSnapshot | None = await read_snapshot(session, self._clock())
        except (OSError, DBAPIError, TimeoutError) as error:
            log.warning("metrics: the database did not answer: %s",
                        str(error).strip().splitlines()[0] if str(error).strip()
                        else type(error).__name__)
            snapshot = None
        self._metrics.show(snapshot)
        return snapshot

    async def metrics(self) -> Reply:
        await self.snapshot()
        return Reply(200, CONTENT_TYPE_LATEST, generate_latest(self._metrics.registry))

    async def health(self) -> Reply:
        health = assess(await self.snapshot(), last_claim_at=self._metrics.last_claim_at,
                        now=self._clock(), unclaimed_after_s=self._unclaimed_after_s)
        return Reply(200 if health.ok else 503, "application/json",
                     json.dumps(health.as_json()).encode())

    def routes(self) -> dict[str, Route]:
        return {"/metrics": self.metrics, "/healthz": self.health}


@asynccontextmanager
async def metrics_listener(
    settings: MetricsSettings, probe: ValidatorProbe
) -> AsyncIterator[Listener | None]:
    """The listener on ``settings.host``:``settings.port`` while entered; None (nothing
    listens) when no port is set."""
    if settings.port is None:
        yield None
        return
    async with Listener(settings.host, settings.port, probe.routes()) as listener:
        yield listener

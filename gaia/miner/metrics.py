"""The miner's Prometheus series, in a registry of its own per runtime.

Recorded as things happen: HTTP requests by route and status, refusals by their error code
(:class:`RequestMetricsMiddleware`, the outermost middleware, so the body limit's 413 and
the routes' refusals are counted alike), connections the server closed before any request
(:mod:`gaia.miner.connections`), the time of each lead's inference, and each
forecast job run's outcome. Read from the database when scraped: jobs by state.

Each :class:`MinerMetrics` owns an explicit ``CollectorRegistry`` (never the global
default), so several miners in one process (the simulated month) keep their own series.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gaia.miner.connections import ConnectionRefusal

LEAD_BUCKETS = (0.01, 0.05, 0.25, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)
ERROR_BODY_LIMIT = 4096  # a refusal's JSON body is read for its code up to this size


class JobRunOutcome(StrEnum):
    READY = "ready"  # forecast_ready: manifest signed
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # cancelled at shutdown; resumes at the next start


class _JobStates(Collector):
    """``gaia_miner_jobs{state}`` from the counts of the last scrape; none when the
    database did not answer."""

    def __init__(self) -> None:
        self.counts: dict[str, int] | None = None

    def collect(self) -> Iterator[Metric]:
        counts = self.counts
        up = GaugeMetricFamily("gaia_miner_database_up", "1 when the database answered the scrape")
        up.add_metric([], 0.0 if counts is None else 1.0)
        yield up
        if counts is None:
            return
        jobs = GaugeMetricFamily("gaia_miner_jobs", "Forecast jobs in the database by state",
                                 labels=["state"])
        for state, count in sorted(counts.items()):
            jobs.add_metric([state], float(count))
        yield jobs


class MinerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._requests = Counter("gaia_miner_requests", "HTTP requests answered",
                                 ["route", "status"], registry=self.registry)
        self._refusals = Counter("gaia_miner_refusals",
                                 "Requests refused, by status and error code",
                                 ["status", "reason"], registry=self.registry)
        self._leads = Histogram("gaia_miner_inference_seconds",
                                "Time to compute and write one forecast lead",
                                ["lead_hours"], buckets=LEAD_BUCKETS, registry=self.registry)
        self._connections = Counter(
            "gaia_miner_connections_refused",
            "Connections closed by the caps or the request read deadline, before any request",
            ["reason"], registry=self.registry)
        self._jobs = Counter("gaia_miner_forecast_jobs", "Forecast job runs ended, by outcome",
                             ["outcome"], registry=self.registry)
        self._states = _JobStates()
        self.registry.register(self._states)

    def request_answered(self, route: str, status: int, refusal: str | None) -> None:
        self._requests.labels(route, str(status)).inc()
        if refusal is not None:
            self._refusals.labels(str(status), refusal).inc()

    def connection_refused(self, refusal: ConnectionRefusal) -> None:
        self._connections.labels(refusal.value).inc()

    def lead_computed(self, lead_hours: int, seconds: float) -> None:
        self._leads.labels(str(lead_hours)).observe(seconds)

    def job_ended(self, outcome: JobRunOutcome) -> None:
        self._jobs.labels(outcome.value).inc()

    def show_job_states(self, counts: dict[str, int] | None) -> None:
        """Expose ``counts`` (state -> jobs) from now on; None: the database did not answer."""
        self._states.counts = counts


def refusal_code(status: int, body: bytes) -> str:
    """The ``error`` code of a refusal's JSON body (``ErrorResponse``), else ``http_<status>``."""
    try:
        code = json.loads(body).get("error")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.isidentifier() else f"http_{status}"


class RequestMetricsMiddleware:
    """Counts every HTTP response by route template and status, and refusals (status >= 400)
    by their error code."""

    def __init__(self, app: ASGIApp, *, metrics: MinerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 0
        error_body = bytearray()

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and status >= 400:
                room = ERROR_BODY_LIMIT - len(error_body)
                error_body.extend(message.get("body", b"")[:max(room, 0)])
            await send(message)

        try:
            await self.app(scope, receive, observed)
        except Exception:
            status = status or 500  # answered by Starlette's server-error handler, outside
            raise
        finally:
            if status:
                route = scope.get("route")
                template = getattr(route, "path", None) or "unmatched"
                refusal = refusal_code(status, bytes(error_body)) if status >= 400 else None
                self.metrics.request_answered(template, status, refusal)

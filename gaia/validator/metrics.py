"""The validator's Prometheus series, in a registry of its own per process.

Two kinds of series:

- recorded by this process's worker, through the :class:`~gaia.jobs.observer.WorkerObserver`
  that :class:`ValidatorMetrics` is: claims, handler runs by result, their durations, and
  the scoring jobs' time;
- read from the database when scraped (:meth:`ValidatorMetrics.refresh`): jobs by type and
  state, runs by status, failed responses by step and reason, the queue's lag. These are the
  same in every process of one validator: aggregate them with ``max``, not ``sum``.

Each :class:`ValidatorMetrics` owns an explicit ``CollectorRegistry`` (never the global
default), so several validators' parts in one test process stay apart.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from gaia.clock import Now
from gaia.database.validator_schema import WeatherForecastRun, WeatherMinerResponse
from gaia.jobs.observer import JobResult
from gaia.jobs.queue import job_counts, oldest_due
from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus

DURATION_BUCKETS = (0.05, 0.25, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0)

_LEADING_WORDS = re.compile(r"[A-Za-z][A-Za-z0-9-]*(?: [A-Za-z][A-Za-z0-9-]*){0,3}")


def failure_class(reason: str | None) -> str:
    """A bounded label for a response's free-text failure reason: its first words (at most
    four, each starting with a letter), lower-cased. Times, ids and whatever a miner said
    come after a colon, a parenthesis or a number and are left out: ``"late: no committed
    forecast by …"`` is ``late``, ``"miner offline (…)"`` is ``miner offline``."""
    match = _LEADING_WORDS.match(reason or "")
    return match.group(0).lower() if match else "other"


@dataclass(frozen=True)
class DatabaseSnapshot:
    """What the database says at one scrape."""

    jobs: dict[tuple[str, str], int]  # (job type, state) -> jobs
    runs: dict[str, int]  # run status -> runs
    failures: dict[tuple[str, str], int]  # (step, reason class) -> failed responses
    oldest_due: datetime | None  # due time of the longest-waiting unclaimed job
    taken_at: datetime

    @property
    def queue_lag_s(self) -> float:
        """How long the longest-waiting due job has waited for a worker (0: none waits)."""
        if self.oldest_due is None:
            return 0.0
        return max(0.0, (self.taken_at - self.oldest_due).total_seconds())


async def read_snapshot(session: AsyncSession, now: datetime) -> DatabaseSnapshot:
    jobs = {(job_type, status.value): n for (job_type, status), n in
            (await job_counts(session)).items()}
    runs = await session.execute(
        select(WeatherForecastRun.status, func.count()).group_by(WeatherForecastRun.status)
    )
    failed = await session.execute(
        select(WeatherMinerResponse.failed_step, WeatherMinerResponse.failure_reason)
        .where(WeatherMinerResponse.status == MinerResponseStatus.FAILED)
    )
    failures: dict[tuple[str, str], int] = {}
    for step, reason in failed:
        key = (step or "unknown", failure_class(reason))
        failures[key] = failures.get(key, 0) + 1
    return DatabaseSnapshot(
        jobs=jobs,
        runs={status.value: n for status, n in runs},
        failures=failures,
        oldest_due=await oldest_due(session, now),
        taken_at=now,
    )


class _SnapshotCollector(Collector):
    """Exposes the last :class:`DatabaseSnapshot`; none when the database did not answer."""

    def __init__(self) -> None:
        self.snapshot: DatabaseSnapshot | None = None

    def collect(self) -> Iterator[Metric]:
        snapshot = self.snapshot
        up = GaugeMetricFamily("gaia_validator_database_up",
                               "1 when the database answered this scrape")
        up.add_metric([], 0.0 if snapshot is None else 1.0)
        yield up
        if snapshot is None:
            return
        yield _family("gaia_validator_jobs", "Jobs in the queue by type and state",
                      ["job_type", "state"], snapshot.jobs.items())
        yield _family("gaia_validator_runs", "Forecast runs by status", ["status"],
                      [((status,), n) for status, n in snapshot.runs.items()])
        yield _family("gaia_validator_response_failures",
                      "Failed miner responses kept in the database, by step and reason",
                      ["step", "reason"], snapshot.failures.items())
        lag = GaugeMetricFamily("gaia_validator_queue_lag_seconds",
                                "How long the longest-waiting due job has waited for a worker")
        lag.add_metric([], snapshot.queue_lag_s)
        yield lag


def _family(
    name: str, documentation: str, labels: list[str],
    values: Iterable[tuple[tuple[str, ...], int]],
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for key, value in sorted(values):
        family.add_metric(list(key), float(value))
    return family


class ValidatorMetrics:
    """One validator process's series; also its worker's observer.

    ``scoring_job_types``: the job types whose handler time is scoring time.
    ``last_claim_at`` (by ``clock``) starts when this object is made, so a process that has
    just started is not taken for a stuck one.
    """

    def __init__(
        self, clock: Now, *, scoring_job_types: frozenset[str],
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self._clock = clock
        self._scoring_job_types = scoring_job_types
        self.last_claim_at = clock()
        self._claimed = Counter("gaia_validator_jobs_claimed", "Jobs this process claimed",
                                ["job_type"], registry=self.registry)
        self._finished = Counter(
            "gaia_validator_jobs_finished", "Handler runs in this process, by how they ended",
            ["job_type", "result"], registry=self.registry)
        self._durations = Histogram(
            "gaia_validator_job_duration_seconds", "Handler run time in this process",
            ["job_type"], buckets=DURATION_BUCKETS, registry=self.registry)
        self._scoring = Histogram(
            "gaia_validator_scoring_seconds", "Handler run time of the scoring jobs",
            ["job_type", "result"], buckets=DURATION_BUCKETS, registry=self.registry)
        self._database = _SnapshotCollector()
        self.registry.register(self._database)

    def job_claimed(self, job_type: str) -> None:
        self.last_claim_at = self._clock()
        self._claimed.labels(job_type).inc()

    def job_finished(self, job_type: str, result: JobResult, duration_s: float) -> None:
        self._finished.labels(job_type, result.value).inc()
        self._durations.labels(job_type).observe(duration_s)
        if job_type in self._scoring_job_types:
            self._scoring.labels(job_type, result.value).observe(duration_s)

    def show(self, snapshot: DatabaseSnapshot | None) -> None:
        """Expose ``snapshot`` from now on (None: the database did not answer)."""
        self._database.snapshot = snapshot

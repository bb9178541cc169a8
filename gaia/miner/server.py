"""How the miner's app is served: uvicorn with the connection guard, and enough descriptors.

``proxy_headers`` is off: per-address limits count the connection's real peer, and a
client must not choose its own address with ``X-Forwarded-For``.
"""

from __future__ import annotations

import logging
import resource
from functools import partial

import uvicorn
from fastapi import FastAPI

from gaia.config import MinerSettings
from gaia.miner.connections import ConnectionGuard, ConnectionLimits, GuardedH11Protocol
from gaia.miner.metrics import MinerMetrics

log = logging.getLogger(__name__)

# beyond the connections: SQLite, forecast files being served, GFS downloads, the model
DESCRIPTORS_BESIDE_CONNECTIONS = 256


def connection_limits(miner: MinerSettings) -> ConnectionLimits:
    return ConnectionLimits(
        max_connections=miner.max_connections,
        max_per_address=miner.max_connections_per_address,
        request_read_timeout_s=miner.request_read_timeout_s,
    )


def raise_descriptor_limit(wanted: int) -> int:
    """Raise this process's soft limit on open files towards ``wanted`` (at most the hard
    limit); returns the soft limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if target > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < wanted:
        log.warning(
            "open-file limit is %d (hard limit %s) but --max-connections %d needs about %d: "
            "raise the hard limit (ulimit -Hn) or lower --max-connections",
            soft, hard, wanted - DESCRIPTORS_BESIDE_CONNECTIONS, wanted,
        )
    return soft


def server_config(
    app: FastAPI, miner: MinerSettings, *, metrics: MinerMetrics, **options: object
) -> uvicorn.Config:
    """The uvicorn configuration serving ``app`` under ``miner``'s connection limits, each
    closed connection counted in ``metrics``; ``options`` are further ``uvicorn.Config``
    arguments (log level, shutdown timeout)."""
    guard = ConnectionGuard(connection_limits(miner), metrics.connection_refused)
    return uvicorn.Config(
        app,
        host=miner.host,
        port=miner.port,
        http=partial(GuardedH11Protocol, guard=guard),  # type: ignore[arg-type]
        proxy_headers=False,
        **options,  # type: ignore[arg-type]
    )

"""Service behind the forecast routes: the signed manifest and the files it lists.

Paths are built only from a job id found in the database and a key listed in that job's
manifest (``store_file_path``), so no request can name a file outside the store. A listed
file the retention rule has deleted is a 404, like an unlisted one.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from gaia.miner.database import MinerDatabase
from gaia.miner.errors import NotFound
from gaia.miner.pipeline import store_dir
from gaia.tasks.defined_tasks.weather.forecast_manifest import Manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    StoreKeyRejected,
    load_signed_manifest,
    manifest_file,
    store_file_path,
)
from gaia.tasks.defined_tasks.weather.protocol import MinerJobStatus

MANIFEST_CACHE_SIZE = 16


@lru_cache(maxsize=MANIFEST_CACHE_SIZE)
def _manifest(root: Path, manifest_hash: str) -> Manifest:
    """A ready store's manifest; keyed by its hash too, so a rewritten store is never stale."""
    return load_signed_manifest(root).manifest


class ForecastFiles:
    def __init__(self, *, db: MinerDatabase, store_root: Path) -> None:
        self._db = db
        self._store_root = store_root

    async def manifest(self, job_id: str) -> Path:
        root, _ = await self._ready_store(job_id)
        return manifest_file(root)

    async def file(self, job_id: str, key: str) -> Path:
        """The file behind ``key``; 404 when the manifest does not list it, or when the
        retention rule has deleted it (the chunks of day-1-only leads after the day-1 window)."""
        root, manifest_hash = await self._ready_store(job_id)
        try:
            path = store_file_path(root, key, _manifest(root, manifest_hash))
        except StoreKeyRejected as exc:
            raise NotFound(f"job {job_id} has no file {key!r} in its manifest") from exc
        if not path.is_file():
            raise NotFound(f"job {job_id} no longer keeps {key!r} (deleted by its retention)")
        return path

    async def _ready_store(self, job_id: str) -> tuple[Path, str]:
        job = await self._db.get_job(job_id)
        if job is None:
            raise NotFound(f"no job {job_id!r} on this miner")
        if job.status is not MinerJobStatus.FORECAST_READY or job.manifest_hash is None:
            raise NotFound(f"job {job_id} has no forecast yet (status {job.status})")
        return store_dir(self._store_root, job.job_id), job.manifest_hash

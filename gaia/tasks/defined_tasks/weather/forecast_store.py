"""The miner's forecast store: a zarr v3 directory written one lead at a time, then signed.

Layout (zarr format 3, consolidated metadata in the root ``zarr.json``): one array per
variable with dims (lead_hours, [level,] latitude, longitude), one chunk per
(lead, variable, level) field, Blosc-LZ4 compressed; coordinate arrays ``lead_hours``,
``level``, ``latitude``, ``longitude``. Beside the zarr files, ``manifest.json`` holds
the signed manifest listing every file with its size and sha256.

The writer builds everything in ``<root>.partial`` and renames it to ``root`` only once
the manifest is signed, so a store at ``root`` is always complete; a crashed run leaves a
partial directory that the next writer removes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from bittensor.signing import WalletLike, resolve_signer
from zarr.codecs import BloscCodec
from zarr.core.buffer import Buffer
from zarr.core.sync import sync
from zarr.storage import LocalStore

from gaia.tasks.defined_tasks.weather.data.grid import GRID_TOLERANCE_DEG, Grid
from gaia.tasks.defined_tasks.weather.forecast_manifest import (
    MANIFEST_FORMAT_VERSION,
    FileEntry,
    GridSpec,
    Manifest,
    SignedManifest,
    format_init_time,
    parse_signed_manifest,
    sign_manifest,
)
from gaia.tasks.defined_tasks.weather.variables import (
    ALL_VARIABLES,
    PROTOCOL_VERSION,
    UNITS,
    is_level_variable,
)

MANIFEST_FILE = "manifest.json"
PARTIAL_SUFFIX = ".partial"
_KEY_SEGMENT = re.compile(r"^[A-Za-z0-9_.-]+$")
_KEY_ENCODING = {"name": "default", "separator": "/"}
_COMPRESSOR = BloscCodec(cname="lz4", clevel=5, shuffle="shuffle")


class StoreKeyRejected(KeyError):
    """A requested store key is malformed or not listed in the manifest."""


class ForecastWriteError(ValueError):
    """A lead handed to the writer does not match what the store declared."""


def chunk_key(variable: str, lead_index: int, level_index: int | None) -> str:
    """The zarr key of one field's chunk (zarr v3 default encoding, '/' separator)."""
    if level_index is None:
        return f"{variable}/c/{lead_index}/0/0"
    return f"{variable}/c/{lead_index}/{level_index}/0/0"


def check_store_key(key: str) -> str:
    """Return ``key`` if it is a plain relative key ('a/b/c'); raise ``StoreKeyRejected``."""
    if not key or "\\" in key or key.startswith("/"):
        raise StoreKeyRejected(f"store key {key!r} is empty, absolute or has a backslash")
    for segment in key.split("/"):
        if segment in ("", ".", "..") or not _KEY_SEGMENT.match(segment):
            raise StoreKeyRejected(f"store key {key!r} has a bad segment {segment!r}")
    return key


def store_file_path(root: Path, key: str, manifest: Manifest) -> Path:
    """The file behind ``key``; only keys the manifest lists resolve, so nothing escapes ``root``."""
    check_store_key(key)
    if key not in manifest.files:
        raise StoreKeyRejected(f"store key {key!r} is not in the manifest")
    return root / Path(*key.split("/"))


def manifest_path(root: Path) -> Path:
    return root / MANIFEST_FILE


def load_signed_manifest(root: Path) -> SignedManifest:
    """Read a finished store's ``manifest.json`` (raises ``FileNotFoundError`` if unfinished)."""
    return parse_signed_manifest(manifest_path(root).read_bytes())


def _sha256(data: object) -> str:
    return hashlib.sha256(data).hexdigest()  # type: ignore[arg-type]


class _HashingLocalStore(LocalStore):
    """A local store that remembers the sha256 of each value it writes (no re-read later)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.digests: dict[str, FileEntry] = {}

    async def set(self, key: str, value: Buffer) -> None:
        await super().set(key, value)
        data = value.as_numpy_array()
        self.digests[key] = FileEntry(size=int(data.nbytes), sha256=_sha256(data))


def _file_entries(root: Path, digests: dict[str, FileEntry]) -> dict[str, FileEntry]:
    """Every file under ``root``: chunk digests as written, metadata hashed from disk."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        recorded = digests.get(key)
        if recorded is not None and not key.endswith("zarr.json") and recorded.size == path.stat().st_size:
            entries[key] = recorded
        else:
            data = path.read_bytes()
            entries[key] = FileEntry(size=len(data), sha256=_sha256(data))
    return entries


class ForecastStoreWriter:
    """Write a forecast lead by lead into ``root``; ``finalize`` signs it and publishes it."""

    def __init__(
        self,
        root: Path,
        *,
        grid: Grid,
        init_time: datetime | np.datetime64,
        variables: Sequence[str] = ALL_VARIABLES,
        levels: Sequence[int],
        lead_hours: Sequence[int],
    ) -> None:
        unknown = [name for name in variables if name not in ALL_VARIABLES]
        if unknown or not variables:
            raise ValueError(f"bad variables {list(variables)}; known: {', '.join(ALL_VARIABLES)}")
        if list(lead_hours) != sorted(set(lead_hours)) or not lead_hours:
            raise ValueError(f"lead hours must be unique and increasing, got {list(lead_hours)}")
        if root.exists():
            raise FileExistsError(f"forecast store {root} already exists")
        self.root, self.grid = root, grid
        self.init_time = format_init_time(init_time)
        self.variables, self.levels = tuple(variables), tuple(int(v) for v in levels)
        self.lead_hours = tuple(int(v) for v in lead_hours)
        self.partial = root.with_name(root.name + PARTIAL_SUFFIX)
        shutil.rmtree(self.partial, ignore_errors=True)
        self._store = _HashingLocalStore(self.partial)
        self._group = self._create_layout()
        self._arrays = {name: self._create_variable(name) for name in self.variables}
        self._written: set[int] = set()

    def _create_layout(self) -> zarr.Group:
        group = zarr.create_group(store=self._store, zarr_format=3, attributes={
            "init_time": self.init_time, "protocol_version": PROTOCOL_VERSION,
        })
        coords = {
            "lead_hours": np.asarray(self.lead_hours, dtype=np.int32),
            "latitude": self.grid.lat,
            "longitude": self.grid.lon,
        }
        if self.levels:
            coords["level"] = np.asarray(self.levels, dtype=np.int32)
        for name, values in coords.items():
            array = group.create_array(
                name, shape=values.shape, dtype=values.dtype, dimension_names=[name],
                chunk_key_encoding=_KEY_ENCODING,
            )
            array[:] = values
        return group

    def _create_variable(self, name: str) -> zarr.Array:
        n_lat, n_lon = self.grid.shape
        level_dims = (len(self.levels),) if is_level_variable(name) else ()
        return self._group.create_array(
            name,
            shape=(len(self.lead_hours), *level_dims, n_lat, n_lon),
            chunks=(1, *(1 for _ in level_dims), n_lat, n_lon),
            dtype="float32",
            fill_value=np.float32("nan"),
            compressors=[_COMPRESSOR],
            chunk_key_encoding=_KEY_ENCODING,
            dimension_names=["lead_hours", *(["level"] if level_dims else []), "latitude", "longitude"],
            attributes={"units": UNITS[name]},
        )

    def _field(self, ds: xr.Dataset, name: str) -> np.ndarray:
        if name not in ds.data_vars:
            raise ForecastWriteError(f"lead is missing variable {name!r}")
        da = ds[name]
        if "time" in da.dims:
            da = da.squeeze("time", drop=True)
        if is_level_variable(name):
            da = da.sel(level=list(self.levels)).transpose("level", "latitude", "longitude")
        else:
            da = da.transpose("latitude", "longitude")
        return np.asarray(da.values, dtype=np.float32)

    def _check_grid(self, ds: xr.Dataset) -> None:
        lat, lon = np.asarray(ds["latitude"].values), np.asarray(ds["longitude"].values)
        if lat.shape != self.grid.lat.shape or lon.shape != self.grid.lon.shape or (
            np.max(np.abs(lat - self.grid.lat)) > GRID_TOLERANCE_DEG
            or np.max(np.abs(lon - self.grid.lon)) > GRID_TOLERANCE_DEG
        ):
            raise ForecastWriteError("lead is not on the store's grid (same points, same order)")

    def _lead_index(self, lead_hours: int) -> int:
        if lead_hours not in self.lead_hours:
            raise ForecastWriteError(f"lead {lead_hours} h is not one of {self.lead_hours}")
        return self.lead_hours.index(lead_hours)

    def write_lead(self, lead_hours: int, ds: xr.Dataset) -> None:
        """Write one lead (a canonical dataset of one time); leads may come in any order."""
        self._check_grid(ds)
        index = self._lead_index(lead_hours)
        fields = {name: self._field(ds, name) for name in self.variables}
        sync(self._write_fields(index, fields))
        self._written.add(lead_hours)

    async def _write_fields(self, index: int, fields: dict[str, np.ndarray]) -> None:
        """All variables of one lead at once, so their chunks compress in parallel."""
        await asyncio.gather(*(
            self._arrays[name].async_array.setitem(index, values) for name, values in fields.items()
        ))

    def finalize(self, job_id: str, signer: WalletLike) -> SignedManifest:
        """Consolidate metadata, list and hash every file, sign, and publish at ``root``."""
        missing = sorted(set(self.lead_hours) - self._written)
        if missing:
            raise ForecastWriteError(f"leads never written: {missing}")
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Consolidated metadata", category=UserWarning)
            zarr.consolidate_metadata(self._store)
        manifest = Manifest(
            format_version=MANIFEST_FORMAT_VERSION,
            protocol_version=PROTOCOL_VERSION,
            job_id=job_id,
            miner_hotkey=resolve_signer(signer, role="hotkey").ss58_address,
            init_time=self.init_time,
            grid=GridSpec.from_grid(self.grid),
            variables=self.variables,
            levels=self.levels,
            lead_hours=self.lead_hours,
            files=_file_entries(self.partial, self._store.digests),
        )
        signed = sign_manifest(manifest, signer)
        manifest_path(self.partial).write_bytes(signed.to_json_bytes())
        os.replace(self.partial, self.root)
        return signed

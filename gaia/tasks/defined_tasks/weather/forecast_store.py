"""The miner's forecast store: a zarr v3 directory written one lead at a time, then signed.

Layout (zarr format 3, consolidated metadata in the root ``zarr.json``): one array per
variable with dims (lead_hours, [level,] latitude, longitude), one chunk per
(lead, variable, level) field, bit-rounded and Blosc bit-shuffle compressed as
``forecast_codec`` defines (protocol v2); coordinate arrays ``lead_hours``, ``level``,
``latitude``, ``longitude`` in one Zstd chunk each. These codecs are the protocol: the
validator's reader accepts exactly them (``forecast_layout``). Beside the zarr files,
``manifest.json`` holds the signed manifest listing every file with its size and sha256.

The writer builds everything in ``<root>.partial`` and renames it to ``root`` only once
the manifest is signed, so a store at ``root`` is always complete; a crashed run leaves a
partial directory that the next writer removes.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import xarray as xr
import zarr
from bittensor.signing import WalletLike, resolve_signer
from zarr.codecs import ZstdCodec
from zarr.core.chunk_key_encodings import DefaultChunkKeyEncoding
from zarr.storage import LocalStore

from gaia.tasks.defined_tasks.weather.data.grid import GRID_TOLERANCE_DEG, Grid
from gaia.tasks.defined_tasks.weather.forecast_codec import (
    FIELD_COMPRESSOR,
    SERIALIZER,
    encode_field,
    field_filters,
    numcodecs_in_zarr,
)
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
_KEY_ENCODING = DefaultChunkKeyEncoding(separator="/")
# Data chunks are encoded by the writer itself (no per-chunk zarr overhead, in parallel)
# with forecast_codec.encode_field, which produces exactly what the field arrays declare.
# Spelled out rather than left to zarr's default, which may change between versions.
COORDINATE_COMPRESSOR = ZstdCodec(level=0, checksum=False)


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


def manifest_file(root: Path) -> Path:
    return root / MANIFEST_FILE


def load_signed_manifest(root: Path) -> SignedManifest:
    """Read a finished store's ``manifest.json`` (raises ``FileNotFoundError`` if unfinished)."""
    return parse_signed_manifest(manifest_file(root).read_bytes())


def _sha256(data: object) -> str:
    return hashlib.sha256(data).hexdigest()  # type: ignore[arg-type]


def _file_entries(root: Path, chunks: dict[str, FileEntry]) -> dict[str, FileEntry]:
    """Every file under ``root``: data chunks as the writer hashed them, the rest from disk."""
    entries: dict[str, FileEntry] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        key = path.relative_to(root).as_posix()
        entries[key] = chunks[key] if key in chunks else _hash_file(path)
    return entries


def _hash_file(path: Path) -> FileEntry:
    data = path.read_bytes()
    return FileEntry(size=len(data), sha256=_sha256(data))


def _write_chunk(path: Path, variable: str, field: np.ndarray) -> FileEntry:
    """Encode one field exactly as the array's codecs declare (``encode_field``) and hash it."""
    data = encode_field(variable, field)
    path.write_bytes(data)
    return FileEntry(size=len(data), sha256=_sha256(data))


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
        encode_threads: int = 2,
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
        if self.partial.exists():  # left by a crashed run: start clean
            shutil.rmtree(self.partial)
        self.encode_threads = encode_threads
        self._store = LocalStore(self.partial)
        self._chunks: dict[str, FileEntry] = {}
        self._group = self._create_layout()
        for name in self.variables:
            self._create_variable(name)
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
                chunk_key_encoding=_KEY_ENCODING, serializer=SERIALIZER,
                compressors=[COORDINATE_COMPRESSOR],
            )
            array[:] = values
        return group

    def _create_variable(self, name: str) -> None:
        n_lat, n_lon = self.grid.shape
        level_dims = (len(self.levels),) if is_level_variable(name) else ()
        with numcodecs_in_zarr():
            self._group.create_array(
                name,
                shape=(len(self.lead_hours), *level_dims, n_lat, n_lon),
                chunks=(1, *(1 for _ in level_dims), n_lat, n_lon),
                dtype="float32",
                fill_value=np.float32("nan"),
                filters=field_filters(name),
                serializer=SERIALIZER,
                compressors=[FIELD_COMPRESSOR],
                chunk_key_encoding=_KEY_ENCODING,
                dimension_names=["lead_hours", *(["level"] if level_dims else []), "latitude",
                                 "longitude"],
                attributes={"units": UNITS[name]},
            )

    def _field(self, ds: xr.Dataset, name: str) -> np.ndarray:
        if name not in ds.data_vars:
            raise ForecastWriteError(f"lead is missing variable {name!r}")
        da = ds[name]
        if "time" in da.dims:
            da = da.squeeze("time", drop=True)
        if is_level_variable(name):
            present = tuple(int(v) for v in da["level"].values)
            if present != self.levels:
                missing = sorted(set(self.levels) - set(present))
                if missing:
                    raise ForecastWriteError(f"variable {name!r} lacks levels {missing}")
                da = da.sel(level=list(self.levels))
            da = da.transpose("level", "latitude", "longitude")
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

    def _lead_index(self, lead_hours: int, ds: xr.Dataset) -> int:
        if lead_hours not in self.lead_hours:
            raise ForecastWriteError(f"lead {lead_hours} h is not one of {self.lead_hours}")
        if "time" in ds.coords:
            valid = np.datetime64(self.init_time.removesuffix("Z"), "ns") + np.timedelta64(
                lead_hours, "h"
            )
            times = np.asarray(ds["time"].values, dtype="datetime64[ns]").ravel()
            if times.size != 1 or times[0] != valid:
                raise ForecastWriteError(f"lead {lead_hours} h must be valid at {valid}, got {times}")
        return self.lead_hours.index(lead_hours)

    def write_lead(self, lead_hours: int, ds: xr.Dataset) -> None:
        """Write one lead (a canonical dataset of one time); leads may come in any order."""
        self._check_grid(ds)
        index = self._lead_index(lead_hours, ds)
        jobs: list[tuple[str, str, np.ndarray]] = []
        for name in self.variables:
            values = self._field(ds, name)
            if is_level_variable(name):
                jobs += [(chunk_key(name, index, i), name, values[i]) for i in range(len(self.levels))]
            else:
                jobs.append((chunk_key(name, index, None), name, values))
        for folder in {(self.partial / key).parent for key, _, _ in jobs}:
            folder.mkdir(parents=True, exist_ok=True)
        with ThreadPoolExecutor(self.encode_threads) as pool:
            entries = pool.map(lambda job: _write_chunk(self.partial / job[0], job[1], job[2]), jobs)
            self._chunks.update(zip((key for key, _, _ in jobs), entries, strict=True))
        self._written.add(lead_hours)

    def finalize(self, job_id: str, signer: WalletLike) -> SignedManifest:
        """Consolidate metadata, list and hash every file, sign, and publish at ``root``."""
        missing = sorted(set(self.lead_hours) - self._written)
        if missing:
            raise ForecastWriteError(f"leads never written: {missing}")
        with warnings.catch_warnings(), numcodecs_in_zarr():
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
            files=_file_entries(self.partial, self._chunks),
        )
        signed = sign_manifest(manifest, signer)
        manifest_file(self.partial).write_bytes(signed.to_json_bytes())
        os.replace(self.partial, self.root)
        return signed

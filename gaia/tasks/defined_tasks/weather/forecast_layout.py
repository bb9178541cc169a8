"""What each file of a protocol forecast store must be, checked before zarr decodes any of it.

The validator's reader (``forecast_reader.VerifiedHttpStore``) hands zarr only bytes that
passed ``StoreLayout.check``:

- every ``zarr.json`` (the root with its consolidated metadata, and each array's own) must
  say exactly what the project's writer (``forecast_store``) writes for the manifest: the
  same arrays, shapes, dtypes, chunking, fill values, attributes and codecs (for fields the
  protocol v2 codec of ``forecast_codec``: the variable's bit rounding, then Blosc with bit
  shuffle; Zstd for coordinates), and no other key, compressor, filter or dtype;
- every chunk's codec header must declare exactly the decoded size of its chunk shape (the
  Blosc header's ``nbytes``, the Zstd frame's content size). Both decoders allocate what
  the header declares, so a decompression bomb is refused before a byte of it is inflated.
  A field chunk's Blosc header must also name the protocol's compressor and bit shuffle
  (``forecast_codec.FIELD_BLOSC_FLAGS``), the float32 typesize, its own length and a block
  size within the chunk. Whether the values carry only the allowed precision is
  ``forecast_codec.decode_field``'s check, once the chunk is decoded.
  Coordinate chunks (a few hundred bytes decoded) are also decoded here, so nothing about
  them can fail later inside xarray.

A failure raises ``LayoutInvalid``: the miner signed those bytes, so it is the miner's fault.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numcodecs import Zstd

from gaia.tasks.defined_tasks.weather.forecast_codec import (
    BLOSC_HEADER_BYTES,
    FIELD_BLOSC_FLAGS,
    SERIALIZER,
    field_codecs_metadata,
)
from gaia.tasks.defined_tasks.weather.forecast_manifest import Manifest
from gaia.tasks.defined_tasks.weather.forecast_store import COORDINATE_COMPRESSOR
from gaia.tasks.defined_tasks.weather.variables import PROTOCOL_VERSION, UNITS, is_level_variable

ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_COORDINATE_CODEC = Zstd()


class LayoutInvalid(ValueError):
    """A store file differs from what the protocol's writer produces for the manifest."""


@dataclass(frozen=True)
class ArraySpec:
    """One array exactly as the writer creates it."""

    shape: tuple[int, ...]
    chunk_shape: tuple[int, ...]
    dtype: np.dtype[Any]
    dimension_names: tuple[str, ...]
    codecs: tuple[Mapping[str, Any], ...]  # the zarr.json "codecs" list, in order
    is_coordinate: bool
    attributes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def chunk_nbytes(self) -> int:
        return math.prod(self.chunk_shape) * self.dtype.itemsize

    def metadata(self) -> dict[str, Any]:
        """The array's ``zarr.json`` document as the writer's zarr emits it."""
        fill: Any = "NaN" if self.dtype.kind == "f" and not self.is_coordinate else (
            0.0 if self.dtype.kind == "f" else 0
        )
        return {
            "shape": list(self.shape),
            "data_type": self.dtype.name,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(self.chunk_shape)}},
            "chunk_key_encoding": {"name": "default", "configuration": {"separator": "/"}},
            "fill_value": fill,
            "codecs": [dict(codec) for codec in self.codecs],
            "attributes": dict(self.attributes),
            "dimension_names": list(self.dimension_names),
            "zarr_format": 3,
            "node_type": "array",
            "storage_transformers": [],
        }


def _coordinate(name: str, length: int, dtype: type) -> ArraySpec:
    return ArraySpec(shape=(length,), chunk_shape=(length,), dtype=np.dtype(dtype),
                     dimension_names=(name,), is_coordinate=True,
                     codecs=(SERIALIZER.to_dict(), COORDINATE_COMPRESSOR.to_dict()))


def _field(name: str, manifest: Manifest) -> ArraySpec:
    if name not in UNITS:
        raise LayoutInvalid(f"the manifest lists {name!r}, not a protocol variable")
    grid = (manifest.grid.n_lat, manifest.grid.n_lon)
    levels = (len(manifest.levels),) if is_level_variable(name) else ()
    return ArraySpec(
        shape=(len(manifest.lead_hours), *levels, *grid),
        chunk_shape=(1, *(1 for _ in levels), *grid),
        dtype=np.dtype(np.float32),
        dimension_names=("lead_hours", *(("level",) if levels else ()), "latitude", "longitude"),
        codecs=tuple(field_codecs_metadata(name)),
        is_coordinate=False,
        attributes={"units": UNITS[name]},
    )


@dataclass(frozen=True)
class StoreLayout:
    """Every array the manifest implies, and the root group's attributes."""

    arrays: Mapping[str, ArraySpec]
    root_attributes: Mapping[str, str]

    @classmethod
    def from_manifest(cls, manifest: Manifest) -> StoreLayout:
        arrays = {
            "lead_hours": _coordinate("lead_hours", len(manifest.lead_hours), np.int32),
            "latitude": _coordinate("latitude", manifest.grid.n_lat, np.float64),
            "longitude": _coordinate("longitude", manifest.grid.n_lon, np.float64),
        }
        if manifest.levels:
            arrays["level"] = _coordinate("level", len(manifest.levels), np.int32)
        arrays |= {name: _field(name, manifest) for name in manifest.variables}
        attributes = {"init_time": manifest.init_time, "protocol_version": PROTOCOL_VERSION}
        return cls(arrays=arrays, root_attributes=attributes)

    def root_metadata(self) -> dict[str, Any]:
        return {
            "attributes": dict(self.root_attributes),
            "zarr_format": 3,
            "node_type": "group",
            "consolidated_metadata": {
                "kind": "inline",
                "must_understand": False,
                "metadata": {name: spec.metadata() for name, spec in self.arrays.items()},
            },
        }

    def check(self, key: str, data: bytes) -> None:
        """Raise ``LayoutInvalid`` unless ``data`` is what the file ``key`` must hold."""
        name, _, rest = key.partition("/")
        if key == "zarr.json":
            _check_document(key, data, self.root_metadata())
        elif name in self.arrays and rest == "zarr.json":
            _check_document(key, data, self.arrays[name].metadata())
        elif name in self.arrays and rest.startswith("c/"):
            _check_chunk(key, data, self.arrays[name])
        else:
            raise LayoutInvalid(f"{key} is not a file of a protocol forecast store")


def _check_document(key: str, data: bytes, expected: dict[str, Any]) -> None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError) as error:  # RecursionError: hostile nesting depth
        raise LayoutInvalid(f"{key} is not JSON: {error}") from error
    if document != expected:
        raise LayoutInvalid(f"{key} differs from the protocol's layout: {_first_difference(document, expected)}")


def _first_difference(document: Any, expected: Any, path: str = "") -> str:
    """Where two JSON values first differ (for a reason a miner's operator can act on)."""
    if isinstance(document, dict) and isinstance(expected, dict):
        for name in sorted(set(document) | set(expected)):
            if name not in expected:
                return f"unexpected {path}{name}"
            if name not in document:
                return f"missing {path}{name}"
            if document[name] != expected[name]:
                return _first_difference(document[name], expected[name], f"{path}{name}.")
    return f"{path.rstrip('.') or 'document'} is {json.dumps(document)[:200]}, expected {json.dumps(expected)[:200]}"


def _check_chunk(key: str, data: bytes, spec: ArraySpec) -> None:
    if spec.is_coordinate:
        declared = _zstd_content_size(key, data)
    else:
        declared = _blosc_nbytes(key, data, spec.dtype.itemsize)
    if declared != spec.chunk_nbytes:
        raise LayoutInvalid(
            f"{key} declares {declared} decoded bytes, its chunk shape {spec.chunk_shape} holds "
            f"{spec.chunk_nbytes}"
        )
    if spec.is_coordinate:
        _decode_coordinate(key, data, spec)


def _blosc_nbytes(key: str, data: bytes, itemsize: int) -> int:
    """The decoded size a Blosc(1) chunk declares, after checking its header is the
    protocol's (compressor, bit shuffle) and coherent (typesize, length, block size)."""
    if len(data) < BLOSC_HEADER_BYTES:
        raise LayoutInvalid(f"{key} is shorter than a Blosc header")
    mismatch = FIELD_BLOSC_FLAGS.mismatch(data[2])
    if mismatch:
        raise LayoutInvalid(f"{key}: Blosc header is not the protocol's codec: {mismatch}")
    typesize = data[3]
    nbytes, blocksize, cbytes = (int.from_bytes(data[i:i + 4], "little") for i in (4, 8, 12))
    if typesize != itemsize or cbytes != len(data):
        raise LayoutInvalid(
            f"{key}: Blosc header says typesize {typesize} and {cbytes} bytes, the chunk has "
            f"typesize {itemsize} and {len(data)} bytes"
        )
    if not 0 < blocksize <= nbytes:
        raise LayoutInvalid(f"{key}: Blosc header says block size {blocksize} for {nbytes} bytes")
    return nbytes


def _zstd_content_size(key: str, data: bytes) -> int:
    """The content size a Zstd frame header declares (RFC 8878 §3.1.1.1); a frame that
    does not declare it, or needs a dictionary, is refused."""
    if len(data) < 6 or data[:4] != ZSTD_MAGIC:
        raise LayoutInvalid(f"{key} is not a Zstd frame")
    descriptor = data[4]
    size_flag, single_segment, dictionary_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    if dictionary_flag:
        raise LayoutInvalid(f"{key} needs a Zstd dictionary")
    size_bytes = (1 if single_segment else 0, 2, 4, 8)[size_flag]
    if not size_bytes:
        raise LayoutInvalid(f"{key}: the Zstd frame does not declare its content size")
    start = 5 + (0 if single_segment else 1)
    if len(data) < start + size_bytes:
        raise LayoutInvalid(f"{key}: truncated Zstd frame header")
    size = int.from_bytes(data[start:start + size_bytes], "little")
    return size + 256 if size_bytes == 2 else size


def _decode_coordinate(key: str, data: bytes, spec: ArraySpec) -> None:
    """Decode into a buffer of exactly the chunk's size: a stream that would write more
    (a second frame, say) fails here, as the miner's fault, not inside xarray."""
    out = np.empty(spec.chunk_nbytes, dtype=np.uint8)
    try:
        _COORDINATE_CODEC.decode(data, out=out)
    except (RuntimeError, ValueError) as error:
        raise LayoutInvalid(f"{key} does not decode: {error}") from error

"""Reading whole 2-D fields out of ERA5-style zarr arrays, each source chunk once.

Shared by the ERA5 and climatology readers. Both stores are zarr v2 with consolidated
metadata and arrays shaped ``(<lead dims>..., [level,] latitude, longitude)``: ARCO ERA5
leads with ``time`` (chunks of one time and all 37 levels), WeatherBench-2 climatology with
``hour, dayofyear`` (chunks of 3 x 3 and one level). A :class:`SourceChunk` names one chunk
and the wanted fields in it; :func:`read_chunk` reads it with a single orthogonal selection,
so zarr fetches and decodes the chunk once and copies out only the wanted levels. Reads go
straight to zarr, not through xarray: xarray turns two index arrays on one dimension into a
pointwise selection that zarr walks element by element.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import zarr

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.data.lead_fields import FieldKey
from gaia.tasks.defined_tasks.weather.data.zarr_http import HttpStore
from gaia.tasks.defined_tasks.weather.variables import is_level_variable


@dataclass(frozen=True)
class SourceChunk:
    """One chunk of one store variable and the wanted fields it holds.

    ``name`` identifies the chunk within its store (a lock name for the reference cache);
    ``lead`` selects it on the lead dims (an index, or the chunk's slice whose points are
    ``entries``); ``levels`` are the store's level indices of ``fields`` (None: surface)."""

    name: str
    array: str
    lead: tuple[int | slice, ...]
    entries: tuple[Hashable, ...]
    fields: tuple[FieldKey, ...]
    levels: tuple[int, ...] | None


def open_group(url: str) -> zarr.Group:
    """A consolidated zarr v2 store, over HTTP(S) or a local path (one metadata request)."""
    store: object = HttpStore(url) if url.startswith(("http://", "https://")) else url
    return zarr.open_consolidated(store, mode="r", zarr_format=2)


def child_array(group: zarr.Group, name: str) -> zarr.Array:
    """The member ``name`` of ``group`` as an array; ``KeyError`` when absent, ``TypeError``
    when it is a subgroup."""
    node = group[name]
    if not isinstance(node, zarr.Array):
        raise TypeError(f"store member {name!r} is a group, not an array")
    return node


def axis_values(group: zarr.Group, name: str) -> np.ndarray:
    """Every value of the (1-D coordinate) array ``name``."""
    return np.asarray(child_array(group, name)[:])


def group_grid(group: zarr.Group) -> Grid:
    lat = axis_values(group, "latitude").astype(np.float64)
    lon = np.mod(axis_values(group, "longitude").astype(np.float64), 360)
    return Grid(latitudes=tuple(lat.tolist()), longitudes=tuple(lon.tolist()))


def by_variable(keys: Iterable[FieldKey], lexicon: Mapping[str, object]
                ) -> dict[str, list[int | None]]:
    """Wanted levels per canonical variable, in first-seen order; ``KeyError`` for an
    unknown variable or a level on the wrong kind of variable."""
    wanted: dict[str, list[int | None]] = {}
    for variable, level in keys:
        if variable not in lexicon:
            raise KeyError(f"unknown variables {[variable]}; known: {list(lexicon)}")
        if is_level_variable(variable) == (level is None):
            kind = "a pressure-level" if level is None else "a surface"
            raise KeyError(f"{variable} is not {kind} variable (asked for level {level})")
        levels = wanted.setdefault(variable, [])
        if level not in levels:
            levels.append(level)
    return wanted


def store_array(group: zarr.Group, name: str, lead_dims: Sequence[str], level: bool) -> zarr.Array:
    """The store's array ``name``; ``KeyError`` when absent, ``ValueError`` when its dims are
    not ``(*lead_dims, [level,] latitude, longitude)``."""
    if name not in group.array_keys():
        raise KeyError(f"store has no variables {[name]}")
    array = child_array(group, name)
    listed = array.attrs.get("_ARRAY_DIMENSIONS", ())
    dims = tuple(listed) if isinstance(listed, list | tuple) else ()
    expected = (*lead_dims, *(("level",) if level else ()), "latitude", "longitude")
    if dims != expected:
        raise ValueError(f"{name} has dims {dims}, expected {expected}")
    return array


def level_indices(group: zarr.Group, levels: Sequence[int]) -> list[int]:
    """Indices of ``levels`` (hPa) on the store's level axis; ``KeyError`` for absent ones."""
    have = [int(v) for v in axis_values(group, "level")]
    absent = sorted(set(levels) - set(have))
    if absent:
        raise KeyError(f"store has no levels {absent} hPa")
    return [have.index(level) for level in levels]


def split_by_chunk(indices: Sequence[int], chunk: int) -> dict[int, list[int]]:
    """``indices`` grouped by the chunk (of size ``chunk``) each falls in."""
    groups: dict[int, list[int]] = {}
    for index in indices:
        groups.setdefault(index // chunk, []).append(index)
    return groups


def chunk_nbytes(group: zarr.Group, chunk: SourceChunk) -> int:
    """Decoded size of one chunk of ``chunk``'s array."""
    array = child_array(group, chunk.array)
    return math.prod(array.chunks) * array.dtype.itemsize


def read_chunk(group: zarr.Group, chunk: SourceChunk) -> dict[Hashable, dict[FieldKey, np.ndarray]]:
    """The chunk's fields at each of its entries: one selection, one chunk read.

    Arrays are float32 (latitude, longitude) views of one fresh block per call."""
    array = child_array(group, chunk.array)
    rows = (list(chunk.levels),) if chunk.levels is not None else ()
    block = np.asarray(array.get_orthogonal_selection((*chunk.lead, *rows)), dtype=np.float32)
    spans = [part for part in chunk.lead if isinstance(part, slice)]
    block = block.reshape(-1, *block.shape[len(spans):]) if spans else block[np.newaxis]
    out: dict[Hashable, dict[FieldKey, np.ndarray]] = {}
    for entry, at in zip(chunk.entries, block, strict=True):
        if chunk.levels is None:
            out[entry] = {chunk.fields[0]: at}
        else:
            out[entry] = dict(zip(chunk.fields, at, strict=True))
    return out

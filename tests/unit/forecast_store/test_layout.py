"""The protocol layout's pre-decode checks on bytes alone (headers, documents)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from numcodecs import Blosc, Zstd

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.forecast_codec import FIELD_CLEVEL, FIELD_CNAME
from gaia.tasks.defined_tasks.weather.forecast_layout import LayoutInvalid, StoreLayout
from gaia.tasks.defined_tasks.weather.forecast_manifest import GridSpec, Manifest
from gaia.tasks.defined_tasks.weather.variables import PROTOCOL_VERSION

GRID = Grid.regular(30.0)
MANIFEST = Manifest(
    format_version=1, protocol_version=PROTOCOL_VERSION, job_id="job-1", miner_hotkey="5Miner",
    init_time="2026-11-20T12:00:00Z", grid=GridSpec.from_grid(GRID), variables=("2t", "z"),
    levels=(500, 850), lead_hours=(6, 12), files={},
)
LAYOUT = StoreLayout.from_manifest(MANIFEST)
FIELD = np.zeros(GRID.shape, dtype=np.float32)


def _blosc(values: np.ndarray) -> bytes:
    """Blosc as the protocol's field codec sets it, for any dtype and size."""
    codec = Blosc(cname=FIELD_CNAME, clevel=FIELD_CLEVEL, shuffle=Blosc.BITSHUFFLE)
    return bytes(codec.encode(values))


def test_protocol_chunks_pass() -> None:
    LAYOUT.check("2t/c/1/0/0", _blosc(FIELD))
    LAYOUT.check("z/c/0/1/0/0", _blosc(FIELD))
    LAYOUT.check("lead_hours/c/0", bytes(Zstd().encode(np.array([6, 12], dtype="<i4"))))
    LAYOUT.check("zarr.json", json.dumps(LAYOUT.root_metadata()).encode())
    LAYOUT.check("z/zarr.json", json.dumps(LAYOUT.arrays["z"].metadata()).encode())


@pytest.mark.parametrize(("key", "data", "reason"), [
    ("2t/c/0/0/0", _blosc(FIELD.astype(np.float64)), "typesize 8"),
    ("2t/c/0/0/0", _blosc(FIELD)[:-1], "Blosc header says"),
    ("2t/c/0/0/0", b"short", "shorter than a Blosc header"),
    ("2t/c/0/0/0", _blosc(np.zeros(FIELD.size + 1, dtype=np.float32)), "declares"),
    ("lead_hours/c/0", _blosc(np.array([6, 12], dtype="<i4")), "not a Zstd frame"),
    ("lead_hours/c/0", b"\x28\xb5\x2f\xfd\x21\x01\x08" + b"\x00" * 8, "dictionary"),
    ("lead_hours/c/0", bytes(Zstd().encode(np.array([6, 12, 18], dtype="<i4"))), "declares 12"),
    ("zarr.json", b"[" * 100_000, "not JSON"),
    ("zarr.json", b"{", "not JSON"),
    ("extra/file", b"", "not a file of a protocol forecast store"),
    ("q/c/0/0/0/0", _blosc(FIELD), "not a file of a protocol forecast store"),
])
def test_anything_else_is_refused_before_decoding(key: str, data: bytes, reason: str) -> None:
    with pytest.raises(LayoutInvalid, match=reason):
        LAYOUT.check(key, data)


def test_a_document_difference_is_named() -> None:
    document = LAYOUT.arrays["2t"].metadata() | {"fill_value": 0.0}
    with pytest.raises(LayoutInvalid, match=r"fill_value is 0.0, expected \"NaN\""):
        LAYOUT.check("2t/zarr.json", json.dumps(document).encode())


def test_a_manifest_naming_an_unknown_variable_has_no_layout() -> None:
    with pytest.raises(LayoutInvalid, match="'sst', not a protocol variable"):
        StoreLayout.from_manifest(MANIFEST.model_copy(update={"variables": ("2t", "sst")}))

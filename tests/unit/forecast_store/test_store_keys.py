"""Store keys: only plain relative keys listed in the manifest resolve to files."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.forecast_manifest import FileEntry, GridSpec, Manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    StoreKeyRejected,
    chunk_key,
    store_file_path,
)

LISTED = ("zarr.json", "z/c/0/3/0/0", "2t/zarr.json")


@pytest.fixture
def manifest() -> Manifest:
    return Manifest(
        format_version=1, protocol_version="1", job_id="j", miner_hotkey="5Fake",
        init_time="2026-11-28T12:00:00Z", grid=GridSpec.from_grid(Grid.regular(10.0)),
        variables=("2t", "z"), levels=(500,), lead_hours=(6,),
        files={key: FileEntry(size=1, sha256="0" * 64) for key in LISTED},
    )


def test_listed_keys_resolve_under_root(manifest: Manifest) -> None:
    root = Path("/srv/store/job")
    assert store_file_path(root, "z/c/0/3/0/0", manifest) == root / "z" / "c" / "0" / "3" / "0" / "0"
    assert store_file_path(root, "zarr.json", manifest) == root / "zarr.json"


@pytest.mark.parametrize(
    "key",
    [
        "../etc/passwd", "z/../../secret", "/etc/passwd", "z\\c\\0", "z//c", "", "./zarr.json",
        "z/c/0/3/0/0/", "manifest.json", "2t/c/0/0/0", "z/c/0/3/0/0 ", "%2e%2e/x",
    ],
)
def test_rejects_traversal_absolute_odd_and_unlisted_keys(manifest: Manifest, key: str) -> None:
    with pytest.raises(StoreKeyRejected):
        store_file_path(Path("/srv/store/job"), key, manifest)


def test_chunk_keys_follow_the_zarr_v3_default_encoding() -> None:
    assert chunk_key("2t", 3, None) == "2t/c/3/0/0"
    assert chunk_key("z", 0, 12) == "z/c/0/12/0/0"

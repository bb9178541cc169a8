"""The localnet reuses a cached archive only when this code's layout wrote it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from gaia.localnet.calendar import calendar_archive
from gaia.localnet.subnet import cached_archive
from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo

COARSE_DEG = 30.0


def _forget_version(root: Path) -> None:
    """Make the archive look like one written before archives had a format version."""
    path = root / "archive.json"
    data = json.loads(path.read_text())
    del data["format_version"]
    path.write_text(json.dumps(data))


@pytest.mark.parametrize("build", [
    lambda root: cached_archive(root, COARSE_DEG, seed=3),
    lambda root: calendar_archive(root, days=1, grid_deg=COARSE_DEG, seed=3),
], ids=["subnet", "calendar"])
def test_a_stale_archive_is_rebuilt_and_a_current_one_reused(
    tmp_path: Path, build: Callable[[Path], ArchiveInfo]
) -> None:
    first = build(tmp_path)
    marker = first.root / "kept-if-reused"
    marker.touch()
    assert build(tmp_path).root == first.root and marker.exists()
    _forget_version(first.root)
    assert not ArchiveInfo.load(first.root).is_current
    rebuilt = build(tmp_path)
    assert rebuilt.is_current and not marker.exists()

"""Locate the shared real-world files (../shared/realdata beside the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
REALDATA = REPO_ROOT.parent / "shared" / "realdata"


def realdata_dir(name: str) -> Path:
    path = REALDATA / name
    if not path.is_dir():
        pytest.skip(f"real-world fixtures not found at {path}")
    return path

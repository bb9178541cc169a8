"""An operator's pip install migrates: a wheel built from the project, installed in a fresh
virtual environment, adopts the previous validator's database from another directory.

No network: the wheel is built without build isolation and installed without dependencies;
the new environment sees this environment's packages through a ``.pth`` line, which adds the
directory but runs none of the ``.pth`` files in it, so the checkout's editable install of
``gaia`` stays out and only the wheel's ``gaia`` is importable.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from gaia.database import migrations
from tests.fixtures.miner import REPO_ROOT
from tests.fixtures.previous_validator import PREVIOUS_HEAD

pytestmark = pytest.mark.slow


def _run(*command: str | Path, cwd: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GAIA_", "PYTHON"))}
    result = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _wheel(tmp_path: Path) -> Path:
    source = tmp_path / "source"
    shutil.copytree(REPO_ROOT / "gaia", source / "gaia",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO_ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation",
         "--no-index", "-q", "-w", tmp_path / "dist", cwd=source)
    (wheel,) = (tmp_path / "dist").glob("gaia_weather-*.whl")
    return wheel


def _environment(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
         "-q", wheel, cwd=tmp_path)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])",
                     cwd=tmp_path).strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def test_an_installed_wheel_adopts_the_previous_database(
    tmp_path: Path, previous_database_url: str
) -> None:
    python = _environment(tmp_path, _wheel(tmp_path))
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    imported = _run(python, "-c", "import gaia; print(gaia.__file__)", cwd=elsewhere)
    assert imported.startswith(str(tmp_path / "venv")), imported

    out = _run(python, "-m", "gaia.validator.admin", "--database-url", previous_database_url,
               "db", "upgrade", "head", cwd=elsewhere)
    assert f"database at {migrations.head_revision()} (head)" in out
    out = _run(python, "-m", "gaia.validator.admin", "--database-url", previous_database_url,
               "db", "downgrade", "base", cwd=elsewhere)
    assert f"its revision {PREVIOUS_HEAD}" in out

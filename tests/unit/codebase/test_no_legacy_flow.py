"""The refactor removed input-hash verification; no code path may bring it back."""

from __future__ import annotations

import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[3] / "gaia"
FORBIDDEN = re.compile(r"input[_ -]?hash|verify[_ ]step|awaiting_input_hashes|"
                       r"input_validation|verification_passed", re.IGNORECASE)
LEGACY_NAMES = re.compile(r"_(legacy|old|backup)\b|\b(legacy|old|backup)_", re.IGNORECASE)


# The migrations that adopt the previous validator's database must name its columns and statuses.
PREVIOUS_SCHEMA = (PACKAGE / "database" / "alembic_scripts",
                   PACKAGE / "database" / "previous_validator")


def _python_files() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 50, f"expected the gaia package under {PACKAGE}"
    return files


def test_no_input_hash_or_verify_step_in_the_package() -> None:
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}"
        for path in _python_files()
        if not any(path.is_relative_to(folder) for folder in PREVIOUS_SCHEMA)
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []


def test_no_legacy_or_backup_modules() -> None:
    assert [p for p in _python_files() if LEGACY_NAMES.search(p.stem)] == []
    assert not list(PACKAGE.rglob("verify_step.py"))

"""An operator's mistakes with ``python -m gaia.validator`` and its admin commands: each is
one clear line naming the setting or argument, and a non-zero exit; never a traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import pytest

from tests.fixtures.miner import REPO_ROOT


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


CLOSED_DB = f"postgresql://postgres@127.0.0.1:{_closed_port()}/gaia"


def _run(module: str, *args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    result = subprocess.run([sys.executable, "-m", module, *args], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=base | (env or {}), timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stdout == ""
    return result.returncode, result.stderr.strip().splitlines()[-1]


@pytest.mark.parametrize(("args", "env", "code", "says"), [
    (["--workers", "0"], {}, 2, "--workers (validator.workers): Input should be greater than"),
    ([], {"GAIA_LOG_LEVEL": "TRACE"}, 2, "GAIA_LOG_LEVEL (log_level): Input should be"),
    ([], {"GAIA_VALIDATOR__WORKERS": "many"}, 2, "GAIA_VALIDATOR__WORKERS"),
    (["--database-url", "mysql://u@h/db"], {}, 2, "must be a PostgreSQL URL"),
    (["--database-url", CLOSED_DB], {}, 2, "cannot use the database at postgresql"),
    (["--database-url", "postgresql://postgres:secret@127.0.0.1:5432/no_such_db_here"], {}, 2,
     'database "no_such_db_here" does not exist'),
])
def test_validator_start_errors(args: list[str], env: dict[str, str], code: int,
                                says: str) -> None:
    returncode, line = _run("gaia.validator", *args, env=env)
    assert (returncode, says in line) == (code, True), line
    assert "secret" not in line


def test_a_closed_database_port_is_one_line_for_admin() -> None:
    returncode, line = _run("gaia.validator.admin", "--database-url", CLOSED_DB, "runs")
    assert returncode == 1
    assert line.startswith("gaia.validator.admin: cannot use the database at "
                           + CLOSED_DB.replace("postgresql://", "postgresql+asyncpg://")), line


@pytest.mark.parametrize(("args", "code", "says"), [
    (["responses", "999999"], 1, "gaia.validator.admin: no run 999999"),
    (["requeue", "999999", "5Nobody"], 1, "gaia.validator.admin: no run 999999"),
    (["rescore", "999999"], 1, "gaia.validator.admin: no run 999999"),
    (["runs", "--limit", "-1"], 2, "argument --limit: -1 must be above 0"),
    (["hindcast", "--init", "2099-01-01T00"], 2, "--init 2099-01-01T00 is in the future"),
    (["hindcast", "--init", "2025-01-01T00", "--commit-window-minutes", "-5"], 2,
     "argument --commit-window-minutes: -5 must be above 0"),
    (["hindcast", "--init", "2025-02-30T00"], 2, "'2025-02-30T00' is not YYYY-MM-DDTHH"),
])
def test_admin_argument_errors(database_url: str, args: list[str], code: int,
                               says: str) -> None:
    returncode, line = _run("gaia.validator.admin", "--database-url", database_url,
                            "--wallet.name", "nobody", *args)
    assert (returncode, says in line) == (code, True), line

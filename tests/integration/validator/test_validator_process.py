"""``python -m gaia.validator`` as an operator runs it: schema check, clean stop, help."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from gaia.chain.static import write_neurons
from gaia.database import migrations
from tests.fixtures.miner import REPO_ROOT, make_wallet

COMMAND = [sys.executable, "-m", "gaia.validator"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}


def _args(root: Path, database_url: str) -> list[str]:
    wallet = make_wallet(root / "wallets", "validator")
    chain = root / "neurons.json"
    write_neurons(chain, [])
    return ["--database-url", database_url, "--wallet.name", "validator",
            "--wallet.path", str(root / "wallets"), "--chain", "static",
            "--chain.static-path", str(chain), "--data.cache-dir", str(root / "cache"),
            "--scoring-processes", "0", "--wallet.hotkey", wallet.hotkey_str]


def test_help_documents_the_modes_and_flags() -> None:
    result = subprocess.run([*COMMAND, "--help"], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=_env(), check=True)
    for expected in ("worker", "--wallet.name", "--netuid", "--subtensor.network", "--workers",
                     "--database-url", "alembic upgrade head"):
        assert expected in result.stdout


def test_refuses_an_old_schema_and_names_the_fix(tmp_path: Path, empty_database_url: str) -> None:
    migrations.upgrade(empty_database_url, "0001")
    result = subprocess.run([*COMMAND, *_args(tmp_path, empty_database_url)], capture_output=True,
                            text=True, cwd=REPO_ROOT, env=_env(), timeout=120)
    assert result.returncode == 2
    assert "revision 0001" in result.stderr and "alembic upgrade head" in result.stderr


def test_sigterm_stops_the_validator_cleanly(tmp_path: Path, database_url: str) -> None:
    log = tmp_path / "validator.log"
    with log.open("wb") as out:
        process = subprocess.Popen([*COMMAND, *_args(tmp_path, database_url)], cwd=REPO_ROOT,
                                   env=_env(), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while "health" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
    assert "validator stopped" in log.read_text()


def test_a_missing_wallet_is_a_clear_error(tmp_path: Path, database_url: str) -> None:
    args = _args(tmp_path, database_url) + ["--wallet.name", "nobody"]
    result = subprocess.run([*COMMAND, *args], capture_output=True, text=True, cwd=REPO_ROOT,
                            env=_env(), timeout=120)
    assert result.returncode == 2
    assert "cannot read hotkey" in result.stderr and "nobody" in result.stderr

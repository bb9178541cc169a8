"""``python -m gaia.miner``, ``python -m gaia.validator`` and ``admin metagraph`` started with
``--chain bittensor`` as an operator would, their every ``bt.Subtensor`` on the stand-in
(handed over by a ``sitecustomize`` module on the processes' ``PYTHONPATH``; the product has
no test switch): the SDK's real decoder and intents, a subnet with alpha stakes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.protocol import job_status_path
from tests.fixtures.chain_standin import process_env
from tests.fixtures.miner import REPO_ROOT, MinerProcess, free_port
from tests.fixtures.standin_subnet import NETUID, StandInSubnet, seed_subnet

UNKNOWN_JOB = job_status_path("00000000-0000-5000-8000-000000000000")
CHAIN_FLAGS = ("--chain", "bittensor", "--netuid", str(NETUID), "--subtensor.network", "finney")


@pytest.fixture
def subnet(tmp_path: Path) -> StandInSubnet:
    return seed_subnet(tmp_path)


def _env(subnet: StandInSubnet) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    return env | process_env(subnet.state_path, REPO_ROOT)


def _miner(subnet: StandInSubnet, tmp_path: Path, port: int, *extra: str) -> MinerProcess:
    return MinerProcess(
        subnet.miner, subnet.state_path, tmp_path / "miner", "http://127.0.0.1:9/", port=port,
        extra_args=(*CHAIN_FLAGS, "--serve-axon", "--external-ip", "127.0.0.1", *extra),
        extra_env=tuple(process_env(subnet.state_path, REPO_ROOT).items()),
    )


def _serves(subnet: StandInSubnet) -> list[dict]:
    return [c for c in subnet.state().extrinsics if c["call"] == "serve_axon"]


async def _status_code(subnet: StandInSubnet, miner: MinerProcess) -> tuple[int, str]:
    async with SignedClient(subnet.validator, timeout=10.0) as client:
        response = await client.get(miner.url + UNKNOWN_JOB, miner.hotkey)
    return response.status_code, response.text


async def test_the_miner_comes_up_when_the_chain_refuses_its_axon_and_publishes_it_later(
    subnet: StandInSubnet, tmp_path: Path
) -> None:
    port = free_port()
    subnet.change(served_at={subnet.miner.hotkey.ss58_address: subnet.state().block})
    miner = _miner(subnet, tmp_path, port).start()
    try:
        # refused (serving rate limit), logged with the chain's reason; the miner answers,
        # and the validator's 1860 alpha of total stake is over the default minimum of 1000
        code, _ = await _status_code(subnet, miner)
        assert code == 404
        assert [c.get("error") for c in _serves(subnet)] == ["ServingRateLimitExceeded"]
        assert "ServingRateLimitExceeded" in miner.log_tail()
    finally:
        miner.stop()

    subnet.change(block=subnet.state().block + 50)  # the rate limit has passed
    miner = _miner(subnet, tmp_path, port, "--min-validator-stake", "2000").start()
    try:
        code, body = await _status_code(subnet, miner)
        assert code == 403 and "below the minimum 2000" in body
        assert [c.get("error") for c in _serves(subnet)][-1] is None
        assert subnet.state().neurons[1].axon == ("127.0.0.1", port)
    finally:
        miner.stop()

    miner = _miner(subnet, tmp_path, port).start()  # same address: nothing is sent
    try:
        assert len(_serves(subnet)) == 2
        assert "already on the chain" in miner.log_tail()
    finally:
        miner.stop()


def test_a_hostname_for_external_ip_is_a_clear_error(subnet: StandInSubnet) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gaia.miner", *CHAIN_FLAGS, "--serve-axon",
         "--external-ip", "miner.example.org"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=_env(subnet), timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "python -m gaia.miner: error: --external-ip (miner.external_ip): external_ip must be "
        "an IP address such as 203.0.113.7, got 'miner.example.org'")
    assert "Traceback" not in result.stderr


def _start_validator(
    subnet: StandInSubnet, tmp_path: Path, database_url: str, log: Path
) -> subprocess.Popen[bytes]:
    args = ["--database-url", database_url, "--wallet.name", "v", "--wallet.hotkey", "default",
            "--wallet.path", str(subnet.wallets), *CHAIN_FLAGS, "--scoring-processes", "0",
            "--data.cache-dir", str(tmp_path / "cache")]
    with log.open("wb") as out:
        return subprocess.Popen([sys.executable, "-m", "gaia.validator", *args], cwd=REPO_ROOT,
                                env=_env(subnet), stdout=out, stderr=subprocess.STDOUT)


async def test_the_validator_syncs_the_metagraph_and_comes_up(
    subnet: StandInSubnet, tmp_path: Path, database_url: str
) -> None:
    log = tmp_path / "validator.log"
    process = _start_validator(subnet, tmp_path, database_url, log)
    engine = create_async_engine(database_url)
    try:
        deadline = time.monotonic() + 90
        while "metagraph synced" not in log.read_text() and time.monotonic() < deadline:
            assert process.poll() is None, log.read_text()
            await asyncio.sleep(0.3)
        async with engine.connect() as conn:
            miners = list(await conn.execute(text(
                "SELECT uid, stake, validator_permit, ip, port FROM miners ORDER BY uid")))
        assert [tuple(m) for m in miners] == [
            (0, 1860.0, True, None, None), (1, 12.5, False, "45.33.20.7", 8091),
            (2, 0.0, False, "2600:3c00::5", 443)], log.read_text()
        assert "metagraph synced: 3 neurons" in log.read_text()
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, log.read_text()
    finally:
        await engine.dispose()
        if process.poll() is None:
            process.kill()
    assert "Traceback" not in log.read_text()


def _admin(subnet: StandInSubnet, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gaia.validator.admin", "--wallet.name", "v",
         "--wallet.hotkey", "default", "--wallet.path", str(subnet.wallets), *args, "metagraph"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=_env(subnet), timeout=60,
    )


def test_admin_metagraph_prints_what_the_validator_sees(subnet: StandInSubnet) -> None:
    result = _admin(subnet, *CHAIN_FLAGS)
    assert result.returncode == 0, result.stderr
    summary, header, *rows = result.stdout.strip().splitlines()
    assert summary.startswith(f"netuid {NETUID} on finney: 3 neurons, 2 would be queried")
    assert header.split() == ["uid", "hotkey", "stake", "(alpha)", "permit", "axon", "queried"]
    assert rows[0].split() == ["0", subnet.validator.hotkey.ss58_address, "1,860.00", "yes", "-",
                               "no", "(this", "validator)"]
    assert rows[1].split() == ["1", subnet.miner.hotkey.ss58_address, "12.50", "no",
                               "45.33.20.7:8091", "yes"]
    assert rows[2].split()[3:] == ["no", "[2600:3c00::5]:443", "yes"]


def test_admin_metagraph_on_an_unreachable_chain_is_one_line_and_exit_1(
    subnet: StandInSubnet,
) -> None:
    env = _env(subnet)
    del env["CHAIN_STANDIN_STATE"]  # the real SDK transport, to a closed port
    result = subprocess.run(
        [sys.executable, "-m", "gaia.validator.admin", "--wallet.name", "v",
         "--wallet.hotkey", "default", "--wallet.path", str(subnet.wallets), "--chain",
         "bittensor", "--subtensor.network", f"ws://127.0.0.1:{free_port()}", "metagraph"],
        capture_output=True, text=True, cwd=REPO_ROOT, env=env, timeout=60,
    )
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("gaia.validator.admin: chain: metagraph of netuid 57 on ws://127.0.0.1:")

"""A real miner process against callers who sign nothing or ask for too much (issue 13,
items 4, 9 and 11): half-open connection floods, strangers past their budget, API docs,
failed jobs polled again and again, Unix-seconds init times, and start-up mistakes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gaia.net.signed_http import SignedClient
from gaia.tasks.defined_tasks.weather.protocol import INITIATE_FETCH_PATH, job_status_path
from tests.fixtures.miner import (
    REPO_ROOT,
    MinerProcess,
    finished,
    initiate,
    job_row,
    new_miner,
    wait_for_job,
)

UNKNOWN_JOB = job_status_path("00000000-0000-5000-8000-000000000000")
ATTACKER = "127.0.0.2"  # loopback too, but another address than the validator's 127.0.0.1


def half_open(miner: MinerProcess, count: int) -> list[socket.socket]:
    """``count`` connections from ATTACKER that send part of a request line and stop."""
    sockets = []
    for _ in range(count):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind((ATTACKER, 0))
        sock.connect(("127.0.0.1", miner.port))
        sock.sendall(b"GET /weather/jobs/x HTTP/1.1\r\nHost: miner\r\n")
        sockets.append(sock)
    return sockets


def closed_by_peer(sock: socket.socket) -> bool:
    sock.settimeout(0.05)
    try:
        return sock.recv(1024) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True
    except TimeoutError:
        return False


def open_descriptors(miner: MinerProcess) -> int:
    assert miner.process is not None
    return len(os.listdir(f"/proc/{miner.process.pid}/fd"))


async def test_half_open_flood_is_capped_and_timed_out(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    guarded = new_miner(miner_identities, miner_archive, tmp_path, extra_args=(
        "--max-connections-per-address", "20", "--request-read-timeout-s", "3"))
    miner_processes.append(guarded.start())
    before = open_descriptors(guarded)
    flood = half_open(guarded, 100)
    try:
        await asyncio.sleep(0.5)
        closed_at_once = sum(closed_by_peer(s) for s in flood)
        assert closed_at_once >= 80  # all but the per-address cap, closed when accepted
        assert open_descriptors(guarded) <= before + 25
        # the validator, from its own address, is served during the flood
        response = await validator_client.get(guarded.url + UNKNOWN_JOB, guarded.hotkey)
        assert response.status_code == 404, response.text
        await asyncio.sleep(3.5)
        assert all(closed_by_peer(s) for s in flood)  # the rest, at the read deadline
    finally:
        for sock in flood:
            sock.close()


async def test_api_docs_are_not_served(miner: MinerProcess) -> None:
    async with httpx.AsyncClient() as plain:
        for path in ("/docs", "/openapi.json", "/redoc"):
            assert (await plain.get(miner.url + path)).status_code == 404


async def test_strangers_are_limited_by_address_before_verifying(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    limited = new_miner(miner_identities, miner_archive, tmp_path,
                        extra_args=("--refused-per-address-per-minute", "3"))
    miner_processes.append(limited.start())
    url = limited.url + UNKNOWN_JOB
    transport = httpx.AsyncHTTPTransport(local_address=ATTACKER)
    async with SignedClient(miner_identities.stranger, timeout=10.0, transport=transport) as client:
        codes = [(await client.get(url, limited.hotkey)).status_code for _ in range(4)]
    assert codes == [403, 403, 403, 429]
    async with httpx.AsyncClient(transport=httpx.AsyncHTTPTransport(local_address=ATTACKER)) as raw:
        forged = await raw.get(url, headers={"X-Bittensor-Hotkey": limited.hotkey,
                                             "X-Bittensor-Signature": "0x00"})
    assert forged.status_code == 429  # refused before its signature is looked at
    assert (await validator_client.get(url, limited.hotkey)).status_code == 404  # per address


async def test_failed_job_restarts_after_backoff_and_up_to_a_cap(
    miner_identities, miner_archive, tmp_path, miner_processes, validator_client: SignedClient
) -> None:
    failing = new_miner(
        miner_identities, miner_archive, tmp_path, model="tests.fixtures.miner:FailingModel",
        extra_args=("--job-retry-backoff-s", "2", "--job-max-attempts", "2"),
    )
    miner_processes.append(failing.start())
    job_id = str((await initiate(validator_client, failing, miner_archive.init_time)).json()["job_id"])
    await wait_for_job(validator_client, failing, job_id, finished)
    failed_at = time.monotonic()
    for _ in range(5):  # polls inside the backoff start nothing
        assert (await initiate(validator_client, failing, miner_archive.init_time)).json()[
            "status"] == "failed"
    assert job_row(failing, job_id)["attempts"] == 1
    await asyncio.sleep(max(0.0, failed_at + 2.5 - time.monotonic()))
    await initiate(validator_client, failing, miner_archive.init_time)
    await wait_for_job(validator_client, failing, job_id,
                       lambda s: finished(s) and job_row(failing, job_id)["attempts"] == 2)
    await asyncio.sleep(4.5)  # past any backoff: the cap holds
    for _ in range(3):
        await initiate(validator_client, failing, miner_archive.init_time)
    await asyncio.sleep(0.5)
    assert job_row(failing, job_id)["attempts"] == 2
    assert job_row(failing, job_id)["status"] == "failed"


async def test_unix_seconds_init_time_is_refused(
    miner: MinerProcess, miner_archive, validator_client: SignedClient
) -> None:
    body = {"gfs_init_time": int(miner_archive.init_time.timestamp()),
            "expected_miner_hotkey": miner.hotkey, "protocol_version": "2"}
    response = await validator_client.post(miner.url + INITIATE_FETCH_PATH, miner.hotkey, json=body)
    assert response.status_code == 422, response.text
    assert "ISO 8601" in response.json()["message"]


def run_miner(miner: MinerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}
    return subprocess.run(
        [sys.executable, "-m", "gaia.miner", *miner.args(), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.parametrize(
    ("case", "flag"),
    [("no_wallet", "--wallet.name"), ("unknown_model", "--model"),
     ("data_dir_under_a_file", "--data-dir")],
)
def test_startup_mistakes_are_one_line_and_exit_1(
    miner_identities, miner_archive, tmp_path: Path, case: str, flag: str
) -> None:
    miner = new_miner(miner_identities, miner_archive, tmp_path / "miner")
    args: tuple[str, ...] = ()
    if case == "no_wallet":
        args = ("--wallet.name", "nobody")
    elif case == "unknown_model":
        args = ("--model", "no_such_model")
    else:
        blocker = tmp_path / "a-file"
        blocker.write_text("not a directory")
        args = ("--data-dir", str(blocker / "miner"))
    result = run_miner(miner, *args)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and flag in errors[0], result.stderr


def test_descriptor_soft_limit_is_raised_at_start() -> None:
    script = (
        "import resource\n"
        "from gaia.miner.server import raise_descriptor_limit\n"
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "print(raise_descriptor_limit(1280), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO_ROOT, capture_output=True,
                            text=True, timeout=60, check=True)
    granted, soft = map(int, result.stdout.split())
    assert granted == soft > 256

"""The localnet's child processes, as real processes: started with their output in a log,
in their own session, stopped with SIGTERM then SIGKILL, and their own children with them."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from gaia.database.local_postgres import free_port
from gaia.localnet.processes import (
    ManagedProcess,
    ProcessFailed,
    child_environment,
    port_open,
    stop_all,
)


def _process(tmp_path: Path, name: str, module: str, args: list[str],
             grace_s: float = 15.0) -> ManagedProcess:
    return ManagedProcess(name, module, args, tmp_path / "logs" / f"{name}.log",
                          stop_grace_s=grace_s)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(predicate, timeout_s: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_server_comes_up_logs_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    server = _process(tmp_path, "web", "http.server", [str(port), "--bind", "127.0.0.1"]).start()
    try:
        server.wait_for_port(port, timeout_s=30)
        assert port_open(port) and server.running()
    finally:
        server.stop()
    assert not server.running() and not port_open(port)
    assert server.popen is not None and server.popen.returncode is not None
    assert server.log_path.exists()


def test_a_child_that_exits_early_fails_with_the_tail_of_its_log(tmp_path: Path) -> None:
    child = _process(tmp_path, "broken", "json.tool", ["/no/such/file.json"]).start()
    with pytest.raises(ProcessFailed, match="broken exited before listening") as failed:
        child.wait_for_port(free_port(), timeout_s=30)
    assert "No such file" in str(failed.value)


def test_a_child_that_never_listens_times_out(tmp_path: Path) -> None:
    child = _process(tmp_path, "quiet", "tests.fixtures.stubborn_child", [], grace_s=0.2).start()
    try:
        with pytest.raises(ProcessFailed, match="not listening on port .* after 1 s"):
            child.wait_for_port(free_port(), timeout_s=1)
    finally:
        child.stop()


def test_sigterm_ignored_means_sigkill_after_the_grace_and_the_group_goes_too(
    tmp_path: Path,
) -> None:
    child = _process(tmp_path, "stubborn", "tests.fixtures.stubborn_child", [],
                     grace_s=0.5).start()
    _wait_for(lambda: child.log_tail().strip().isdigit())
    grandchild = int(child.log_tail().strip())
    assert _alive(grandchild)
    started = time.monotonic()
    child.stop()
    assert time.monotonic() - started >= 0.5  # it waited out the grace before SIGKILL
    assert not child.running()
    _wait_for(lambda: not _alive(grandchild))


def test_stop_all_terminates_every_process_at_once(tmp_path: Path) -> None:
    ports = [free_port(), free_port()]
    servers = [_process(tmp_path, f"web{i}", "http.server", [str(p), "--bind", "127.0.0.1"])
               .start() for i, p in enumerate(ports)]
    for server, port in zip(servers, ports, strict=True):
        server.wait_for_port(port, timeout_s=30)
    stop_all(servers)
    assert not any(server.running() for server in servers)


def test_stopping_or_killing_what_never_started_does_nothing(tmp_path: Path) -> None:
    idle = _process(tmp_path, "idle", "http.server", [])
    idle.stop()
    idle.kill()
    assert idle.pid is None and not idle.running() and idle.log_tail() == ""


def test_children_get_no_gaia_settings_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAIA_MINER__DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("GAIA_WALLET__NAME", "someone")
    monkeypatch.setenv("PATH_FOR_TEST", "kept")
    environment = child_environment()
    assert not any(name.startswith("GAIA_") for name in environment)
    assert environment["PATH_FOR_TEST"] == "kept"

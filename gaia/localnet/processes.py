"""Child processes of the localnet: started with their output in a log file, in their own
session (so a Ctrl-C reaches only the localnet, which then stops them in order), and stopped
with SIGTERM, then SIGKILL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

STOP_GRACE_S = 15.0


class ProcessFailed(RuntimeError):
    """A child exited or did not come up; the message ends with the tail of its log."""


def child_environment() -> dict[str, str]:
    """This environment without ``GAIA_*``: each child gets its settings as flags only, so a
    variable meant for another process (``GAIA_MINER__DATABASE_URL``…) cannot leak in."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GAIA_")}


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass
class ManagedProcess:
    """``python -m <module> <args>`` with stdout and stderr in ``log_path``."""

    name: str
    module: str
    args: Sequence[str]
    log_path: Path
    stop_grace_s: float = STOP_GRACE_S  # after SIGTERM, then SIGKILL
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return None if self.popen is None else self.popen.pid

    def start(self) -> ManagedProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.args], env=child_environment(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        return self

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def wait_for_port(self, port: int, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while not port_open(port):
            if not self.running():
                raise ProcessFailed(f"{self.name} exited before listening on port {port}; "
                                    f"log {self.log_path}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise ProcessFailed(f"{self.name} not listening on port {port} after "
                                    f"{timeout_s:.0f} s; log {self.log_path}:\n{self.log_tail()}")
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs, as in a crash."""
        if self.popen is not None and self.running():
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, SIGKILL after the grace; then SIGKILL to anything left in its process
        group (its own children, e.g. a scoring pool, which would outlive a killed parent)."""
        if self.popen is None:
            return
        if self.running():
            self.popen.terminate()
            try:
                self.popen.wait(timeout=self.stop_grace_s)
            except subprocess.TimeoutExpired:
                self.kill()
        try:
            os.killpg(self.popen.pid, signal.SIGKILL)  # start_new_session: pgid == pid
        except ProcessLookupError:
            pass  # the group is empty: everything exited

    def log_tail(self, chars: int = 3000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]


def stop_all(processes: Sequence[ManagedProcess]) -> None:
    """SIGTERM to every running process at once, then wait for each (SIGKILL after the grace)."""
    for process in processes:
        if process.popen is not None and process.running():
            process.popen.terminate()
    for process in processes:
        process.stop()

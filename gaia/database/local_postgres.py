"""A private PostgreSQL cluster made with the system's ``initdb``/``pg_ctl``.

Used by the test suite when no server answers and by ``python -m gaia.localnet``. It works
as root too (PostgreSQL refuses to run as root, so the commands run as the ``postgres`` user
through ``runuser`` and the data directory is handed to that user).
"""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
INSTALL_HINT = (
    "install PostgreSQL (Debian/Ubuntu: `apt-get install postgresql`), "
    "or point GAIA_DATABASE_URL at a running server"
)


class PostgresNotFound(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"no PostgreSQL binaries (initdb, pg_ctl) found; {INSTALL_HINT}")


class PostgresStartFailed(RuntimeError):
    pass


def find_bin_dir() -> Path:
    """The directory holding initdb and pg_ctl: PATH first, then the newest Debian install."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).parent
    candidates = sorted(Path("/").glob(DEBIAN_BIN_GLOB.lstrip("/")), key=_version_key)
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    raise PostgresNotFound()


def _version_key(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_answers(host: str, port: int, timeout_s: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return True
    except OSError:
        return False


@dataclass
class LocalPostgres:
    """One cluster in ``data_dir`` listening on 127.0.0.1:``port`` with trust auth."""

    data_dir: Path
    port: int
    bin_dir: Path

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise PostgresStartFailed(f"{what} failed: {result.stderr.strip() or result.stdout}")

    def initialise(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            for path in (self.data_dir, *self.data_dir.parents):
                if path == Path(path.anchor):
                    break
                os.chmod(path, os.stat(path).st_mode | 0o011)
            shutil.chown(self.data_dir, user.pw_uid, user.pw_gid)
        result = self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-A", "trust",
            "-U", "postgres", "--no-sync",
        )
        self._check(result, "initdb")

    def start(self) -> None:
        self.initialise()
        options = (
            f"-p {self.port} -k {self.data_dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        result = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-o", options,
            "-l", str(self.data_dir / "server.log"), "-w", "start",
        )
        self._check(result, "pg_ctl start")
        log.info("started PostgreSQL in %s on port %d", self.data_dir, self.port)

    def stop(self) -> None:
        result = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"
        )
        if result.returncode != 0:
            log.warning("pg_ctl stop: %s", result.stderr.strip())


def start_local_postgres(data_dir: Path, port: int | None = None) -> LocalPostgres:
    cluster = LocalPostgres(data_dir=data_dir, port=port or free_port(), bin_dir=find_bin_dir())
    cluster.start()
    return cluster

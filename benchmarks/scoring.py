"""Benchmark: ERA5 scoring of one lead (69 fields) at 0.25 degree end to end, and day-1.

The parent process plays the miner: it writes a signed 0.25 degree forecast store
(``ForecastStoreWriter``, persistence of synthetic inputs, leads 6, 12, 24, 48 h) and serves
it with the signature-checking loopback server of ``tests/fixtures/forecast_server.py``
(btauth verified on every request). It also writes truth and climatology for those leads as
local zarr (canonical layout, one chunk per field; synthetic weather-shaped fields). The
truth store doubles as the day-1 GFS reference.

A fresh child process plays the validator's scorer, so its peak RSS is its own: the signed
manifest is fetched and checked, the store opened through the verified reader, and for each
ERA5 lead (24, 48 h) the 69 fields are read (sha256 of every file, decompression), truth and
climatology read from the local zarr, and ``score_era5`` run; then day-1 for the miner (the
6 day-1 fields at 6, 12, 24 h through the same verified reads, ``score_day1``).

    .venv/bin/python benchmarks/scoring.py [--grid 0.25] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference import ForecastInputs, get_model  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state  # noqa: E402
from gaia.tasks.defined_tasks.weather.variables import PRESSURE_LEVELS_HPA  # noqa: E402

INIT_TIME = np.datetime64("2026-11-20T12:00", "ns")
STORE_LEADS: tuple[int, ...] = (6, 12, 24, 48)
ERA5_LEADS: tuple[int, ...] = (24, 48)
DAY1_LEADS: tuple[int, ...] = (6, 12, 24)
JOB_ID = "bench"


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _current_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def _hours(lead: int) -> np.datetime64:
    return INIT_TIME + np.timedelta64(lead, "h")


def write_reference(path: Path, grid: Grid, seed: int) -> None:
    """Canonical fields at every store lead, dims (lead_hours, [level,] lat, lon), one chunk
    per field, written one lead at a time."""
    for index, lead in enumerate(STORE_LEADS):
        state = synthetic_state(grid, [INIT_TIME, _hours(lead)], seed=seed).isel(time=[1])
        state = state.swap_dims(time="lead_hours").assign_coords(lead_hours=[lead]).drop_vars("time")
        if index == 0:
            encoding = {name: {"chunks": (1, 1, *grid.shape) if "level" in state[name].dims
                               else (1, *grid.shape)} for name in state.data_vars}
            state.to_zarr(path, mode="w", encoding=encoding, consolidated=False)
        else:
            state.to_zarr(path, append_dim="lead_hours", consolidated=False)


def write_store(root: Path, grid: Grid) -> str:
    """Persistence of synthetic inputs at the store leads, signed; returns the miner hotkey."""
    from bittensor.sp_core import Keypair

    inputs = ForecastInputs.from_dataset(
        synthetic_state(grid, [INIT_TIME - np.timedelta64(6, "h"), INIT_TIME])
    )
    keypair = Keypair.create_from_mnemonic(Keypair.generate_mnemonic())
    writer = ForecastStoreWriter(root, grid=grid, init_time=INIT_TIME, levels=PRESSURE_LEVELS_HPA,
                                 lead_hours=STORE_LEADS)
    for lead, state in get_model("persistence").forecast(inputs, STORE_LEADS):
        writer.write_lead(lead, state)
    writer.finalize(JOB_ID, keypair)
    return str(keypair.ss58_address)


def _constant(dataset: xr.Dataset) -> Callable[[int], xr.Dataset]:
    """A lead source that answers every lead with ``dataset`` (one lead is scored per call)."""
    return lambda _lead: dataset


def _lead(store: Path, lead: int, names: Sequence[str] | None = None) -> xr.Dataset:
    with xr.open_zarr(store, chunks=None, consolidated=False) as ds:
        selected = ds if names is None else ds[list(names)]
        return selected.sel(lead_hours=lead).load()


async def score_leads(base_url: str, miner: str, workdir: Path) -> dict[str, object]:
    """The scorer: verified reads over signed HTTP, local references, score_era5 per lead."""
    from gaia.net.signed_http import SignedClient
    from gaia.tasks.defined_tasks.weather.forecast_reader import (
        fetch_verified_manifest,
        load_lead,
        open_verified_forecast,
    )
    from gaia.tasks.defined_tasks.weather.scoring.era5 import Era5Config, score_era5
    from tests.fixtures.forecast_store import new_keypair

    result: dict[str, object] = {"rss_before_mib": round(_current_rss_mib())}
    leads = []
    async with SignedClient(new_keypair(), timeout=60.0) as client:
        start = time.perf_counter()
        signed = await fetch_verified_manifest(client, base_url, JOB_ID, miner)
        forecast = await open_verified_forecast(client, base_url, JOB_ID, signed.manifest,
                                                signed.manifest_hash)
        result["open_s"] = round(time.perf_counter() - start, 3)
        for lead in ERA5_LEADS:
            t0 = time.perf_counter()
            miner_lead = await load_lead(forecast, lead)
            t1 = time.perf_counter()
            truth = await asyncio.to_thread(_lead, workdir / "truth.zarr", lead)
            clim = await asyncio.to_thread(_lead, workdir / "climatology.zarr", lead)
            t2 = time.perf_counter()
            scored = score_era5(_constant(miner_lead), _constant(truth), _constant(clim),
                                Era5Config(lead_hours=(lead,)))
            t3 = time.perf_counter()
            assert len(scored.fields) == 69 and not scored.missing, scored.notes
            leads.append({"lead": lead, "read_s": round(t1 - t0, 3), "references_s": round(t2 - t1, 3),
                          "score_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3)})
            del miner_lead, truth, clim
        result["leads"] = leads
        result["era5_peak_rss_mib"] = round(_peak_rss_mib())
        result["day1"] = await score_day1_once(client, forecast, workdir)
    result["peak_rss_mib"] = round(_peak_rss_mib())
    return result


async def score_day1_once(client: object, forecast: xr.Dataset, workdir: Path) -> dict[str, float]:
    """Day-1 of the miner: the validator's selection of its store, then ``score_day1``."""
    from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS, Day1Config, score_day1

    names = sorted({name for name, _ in DAY1_FIELDS})
    levels = sorted({lev for _, lev in DAY1_FIELDS if lev is not None})
    t0 = time.perf_counter()
    miner = await asyncio.to_thread(
        forecast[names].sel(lead_hours=list(DAY1_LEADS), level=levels).load)
    t1 = time.perf_counter()

    def references(store: Path) -> xr.Dataset:
        with xr.open_zarr(store, chunks=None, consolidated=False) as ds:
            return ds[names].sel(lead_hours=list(DAY1_LEADS), level=levels).load()

    reference = await asyncio.to_thread(references, workdir / "truth.zarr")
    climatology = await asyncio.to_thread(references, workdir / "climatology.zarr")
    t2 = time.perf_counter()
    result = score_day1(miner, reference, climatology, Day1Config(lead_hours=DAY1_LEADS))
    t3 = time.perf_counter()
    return {"read_s": round(t1 - t0, 3), "references_s": round(t2 - t1, 3),
            "score_s": round(t3 - t2, 3), "total_s": round(t3 - t0, 3),
            "passed": float(result.passed)}


def run_scorer(base_url: str, miner: str, workdir: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, __file__, "--child", base_url, miner, str(workdir)],
        check=True, capture_output=True, text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def report(deg: float, r: dict[str, object], setup_s: float) -> None:
    print(f"\ngrid {deg} deg; setup (store + references) {setup_s:.0f} s; scorer RSS before "
          f"reads {r['rss_before_mib']} MiB; manifest + open {r['open_s']} s")
    print("\n| ERA5 lead | verified read s | truth + climatology s | score_era5 s | total s |")
    print("|---|---|---|---|---|")
    for lead in r["leads"]:  # type: ignore[attr-defined]
        print(f"| {lead['lead']} h | {lead['read_s']} | {lead['references_s']} | {lead['score_s']} "
              f"| **{lead['total_s']}** |")
    day1 = r["day1"]
    print(f"\nday-1 (6 fields x 3 leads): verified read {day1['read_s']} s, references "  # type: ignore[index]
          f"{day1['references_s']} s, score_day1 {day1['score_s']} s, total "  # type: ignore[index]
          f"{day1['total_s']} s")  # type: ignore[index]
    print(f"scorer peak RSS: {r['era5_peak_rss_mib']} MiB after ERA5 leads, {r['peak_rss_mib']} "
          f"MiB at the end (target <= 1024)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=float, default=0.25)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--child", nargs=3, metavar=("URL", "MINER", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        base_url, miner, workdir = args.child
        print(json.dumps(asyncio.run(score_leads(base_url, miner, Path(workdir)))))
        return
    from tests.fixtures.forecast_server import running_forecast_server

    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        workdir, grid = Path(tmp), Grid.regular(args.grid)
        start = time.perf_counter()
        miner = write_store(workdir / JOB_ID, grid)
        write_reference(workdir / "truth.zarr", grid, seed=1)
        write_reference(workdir / "climatology.zarr", grid, seed=2)
        setup_s = time.perf_counter() - start
        with running_forecast_server(miner) as server:
            server.stores[JOB_ID] = workdir / JOB_ID
            result = run_scorer(server.base_url, miner, workdir)
        report(args.grid, result, setup_s)


if __name__ == "__main__":
    main()

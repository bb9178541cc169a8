"""Benchmark: Microsoft Aurora through the miner's model path, time and peak memory per lead.

Each (variant, grid) runs in a fresh child process so that its peak memory (``VmHWM``) is
its own. One process writes a random-weight checkpoint of the variant; the measured one
loads it the way the miner does (``load_aurora``: file, sha256, strict load), builds synthetic inputs and GFS-like
statics, then times ``AuroraModel.forecast`` lead by lead (each lead is the 6 h step and the
conversion back to the canonical grid). Random weights cost what trained ones cost.

    .venv/bin/python benchmarks/aurora_inference.py                         # the README's rows
    .venv/bin/python benchmarks/aurora_inference.py --cases tiny@0.25 --leads 2
    .venv/bin/python benchmarks/aurora_inference.py --device cuda --cases Aurora@0.25

Needs the ``aurora`` extra.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DEFAULT_CASES = ("tiny@5", "tiny@1", "tiny@0.25", "AuroraSmallPretrained@2.5",
                 "AuroraSmallPretrained@1")


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _inputs(grid_deg: float):
    import xarray as xr

    from gaia.tasks.defined_tasks.weather.data.grid import Grid
    from gaia.tasks.defined_tasks.weather.data.synthetic import synthetic_statics
    from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs
    from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state

    grid = Grid.regular(grid_deg)
    t0 = np.datetime64("2025-01-02T00:00")
    state = synthetic_state(grid, [t0 - np.timedelta64(6, "h"), t0])
    land = synthetic_statics(grid, 0)
    dims = ("latitude", "longitude")
    statics = xr.Dataset(
        {"lsm": (dims, land.land), "z": (dims, land.orography_m * 9.80665),
         "slt": (dims, np.where(land.land > 0, 2.0, 0.0).astype(np.float32))},
        coords={"latitude": grid.lat, "longitude": grid.lon})
    return ForecastInputs.from_dataset(state, statics)


def save(variant: str, path: Path) -> None:
    from gaia.tasks.defined_tasks.weather.inference.aurora_model import save_random_checkpoint
    from gaia.tasks.defined_tasks.weather.inference.aurora_variants import variant_named

    save_random_checkpoint(path, variant_named(variant))


def child(variant: str, grid_deg: float, leads: int, device: str, checkpoint: Path
          ) -> dict[str, object]:
    from gaia.tasks.defined_tasks.weather.inference.aurora_loader import load_aurora
    from gaia.tasks.defined_tasks.weather.inference.aurora_model import describe

    began = time.perf_counter()
    model = load_aurora(variant=variant, checkpoint=checkpoint, device=device, grid_deg=grid_deg)
    load_s = time.perf_counter() - began
    checkpoint_bytes = checkpoint.stat().st_size
    inputs = _inputs(grid_deg)
    after_load = peak_rss_bytes()
    steps = model.forecast(inputs, [6 * (i + 1) for i in range(leads)])
    per_lead = []
    while True:
        began = time.perf_counter()
        step = next(steps, None)
        if step is None:
            break
        per_lead.append(time.perf_counter() - began)
    return {"variant": variant, "grid_deg": grid_deg, "device": device, **describe(model.network),
            "checkpoint_bytes": checkpoint_bytes, "load_s": load_s, "lead_s": per_lead,
            "peak_rss_after_load_bytes": after_load, "peak_rss_bytes": peak_rss_bytes()}


def run_case(case: str, leads: int, device: str) -> dict[str, object]:
    """The checkpoint is written by one process, measured by another (whose peak is then
    the miner's: one network, loaded from a file)."""
    variant, _, grid = case.partition("@")
    with tempfile.TemporaryDirectory() as folder:
        checkpoint = str(Path(folder) / "random.ckpt")
        subprocess.run([sys.executable, __file__, "--save", variant, checkpoint], check=True)
        result = subprocess.run(
            [sys.executable, __file__, "--child", variant, grid, str(leads), device, checkpoint],
            capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return {"case": case, "error": result.stderr.strip().splitlines()[-1]}
    return {"case": case, **json.loads(result.stdout.strip().splitlines()[-1])}


def report(row: dict[str, object]) -> str:
    if "error" in row:
        return f"{row['case']:<28} failed: {row['error']}"
    leads = row["lead_s"]
    assert isinstance(leads, list)
    later = leads[1:] or leads
    return (f"{row['case']:<28} {row['parameters'] / 1e6:8.2f} M  load {row['load_s']:6.1f} s  "
            f"first lead {leads[0]:7.2f} s  later leads {np.median(later):7.2f} s  "
            f"peak {row['peak_rss_bytes'] / 2**30:6.2f} GiB "
            f"(after load {row['peak_rss_after_load_bytes'] / 2**30:.2f})")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--save":
        save(sys.argv[2], Path(sys.argv[3]))
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        variant, grid, leads, device, checkpoint = sys.argv[2:7]
        print(json.dumps(child(variant, float(grid), int(leads), device, Path(checkpoint))))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", nargs="+", default=list(DEFAULT_CASES),
                        help="VARIANT@GRID_DEG, each in its own process")
    parser.add_argument("--leads", type=int, default=4, help="6 h steps per case (default 4)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda", "auto"])
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args()
    rows = []
    for case in args.cases:
        rows.append(run_case(case, args.leads, args.device))
        print(report(rows[-1]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()

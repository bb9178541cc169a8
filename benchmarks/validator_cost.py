"""Benchmark: what one run costs the validator per miner, through its real scoring code.

The parent plays the outside world. It builds (once, cached in ``--workdir``) the
references a run scores against in the layouts of the real stores (``reference_stores``:
ARCO-shaped ERA5, WeatherBench-2-shaped climatology, GFS GRIB2 with ``.idx`` in NOAA's
layout) and M miners' signed forecasts (``ForecastStoreWriter``, whatever codec it writes;
leads 6, 12 h and 24..240 h every 24 h; truth plus a smooth error of the miner's own). It
serves each reference store and each miner on its own loopback server counting response
bodies and GETs (the miners' servers check btauth on every request, as a miner does), and
commits each miner's manifest as the validator does (``ScoringService.commit_manifest``).

Each phase then runs in a fresh spawned process that reports its own ``VmHWM``
(``/proc/self/status``), its CPU time (``getrusage(RUSAGE_SELF)``: every thread) and wall
time, measured around the task only (imports done before):

* shared: ``scoring_tasks.warm_references_task`` (the host's reference cache filled once
  for the run: the GFS day-1 reference decoded, climatology and ERA5 truth of every lead);
* per miner: ``scoring_tasks.day1_task`` in one process, then one process calling
  ``scoring_tasks.era5_task(env, now, forecast, (lead,))`` for each ERA5 lead in
  turn (one lead per call, as ERA5 arrives one day at a time), each lead timed;
* the floor, beside them: one miner's one lead of bytes already in memory, hashed
  (sha256), decoded with the store's codec and scored with ``metrics.field_statistics``.

A parent watchdog kills a phase whose resident memory passes ``--rss-cap-gib`` and
reports it as such. The environment is ``ScoringEnvironment.from_settings`` of a
``Settings`` pointing at the loopback servers, so fields the scoring service adds come with
their defaults; every run starts with an empty validator cache.

    .venv/bin/python benchmarks/validator_cost.py [--miners 8] [--grid-deg 0.25]
        [--era5-leads 10] [--workdir DIR] [--json FILE] [--rss-cap-gib 6]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import multiprocessing
import resource
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from reference_stores import (  # noqa: E402
    COMPRESSOR,
    CountingServer,
    Era5Writer,
    GfsWriter,
    ReferencePaths,
    ReferencePlan,
    forecast_of,
    truths,
    write_climatology,
)

from gaia.config import DataSettings, Settings, WalletSettings  # noqa: E402
from gaia.tasks.defined_tasks.weather.variables import (  # noqa: E402
    ALL_VARIABLES,
    DAY1_LEAD_HOURS,
    ERA5_LEAD_HOURS,
    PRESSURE_LEVELS_HPA,
    is_level_variable,
)
from tests.fixtures.forecast_server import ForecastServer, serving  # noqa: E402

INIT_TIME = datetime(2026, 11, 20, 0, tzinfo=UTC)  # day of year 324: 5 WB2 day chunks
JOB_ID = "bench-run"
GIB = 1024**3


# -- miners ----------------------------------------------------------------------------------
@dataclass
class CountingForecastServer(ForecastServer):
    """The signature-checking forecast server, counting the bodies it answers."""

    body_bytes: int = 0

    def _answer(self, job_id: str, key: str) -> Any:
        response = super()._answer(job_id, key)
        if response.status_code == 200:
            self.body_bytes += len(response.body)
        return response

    def take(self) -> dict[str, int]:
        counts = {"bytes": self.body_bytes, "gets": sum(self.requests.values())}
        self.body_bytes = 0
        self.requests.clear()
        return counts


@dataclass(frozen=True)
class Miner:
    index: int
    root: Path  # holds the wallet, the store and what today's codec would take

    @property
    def store(self) -> Path:
        return self.root / JOB_ID

    @property
    def wallets(self) -> Path:
        return self.root / "wallets"

    @property
    def v1_sizes(self) -> Path:
        return self.root / "v1_sizes.json"

    @property
    def ready(self) -> bool:
        return self.store.is_dir() and self.v1_sizes.exists()


def _wallet(root: Path, name: str) -> Any:
    import bittensor as bt

    from tests.fixtures.miner import make_wallet
    wallet = bt.Wallet(name=name, hotkey="default", path=str(root))
    if (root / name / "hotkeys" / "default").exists():
        return wallet
    return make_wallet(root, name)


def _forecast_dataset(plan: ReferencePlan, lead: int, fields: dict[str, np.ndarray]) -> xr.Dataset:
    grid = plan.grid
    data = {}
    for name in ALL_VARIABLES:
        dims = ("time", "level", "latitude", "longitude") if is_level_variable(name) else (
            "time", "latitude", "longitude")
        data[name] = (dims, fields[name].astype(np.float32)[None])
    coords = {"time": [np.datetime64(plan.valid(lead).replace(tzinfo=None), "ns")],
              "level": np.asarray(PRESSURE_LEVELS_HPA, dtype=np.int64),
              "latitude": grid.lat, "longitude": grid.lon}
    return xr.Dataset(data, coords=coords)


class MinerWriter:
    """One miner's store, lead by lead; also what each field takes with today's codec
    (Blosc lz4 clevel 5, byte shuffle, lossless)."""

    def __init__(self, miner: Miner, plan: ReferencePlan):
        from gaia.tasks.defined_tasks.weather.forecast_store import ForecastStoreWriter
        shutil.rmtree(miner.root, ignore_errors=True)
        miner.root.mkdir(parents=True)
        self.miner, self.plan = miner, plan
        self.wallet = _wallet(miner.wallets, f"miner{miner.index}")
        self.writer = ForecastStoreWriter(miner.store, grid=plan.grid, init_time=plan.init_time,
                                          levels=PRESSURE_LEVELS_HPA, lead_hours=plan.leads)
        self.v1: dict[str, int] = {}

    def write(self, lead: int, truth: dict[str, np.ndarray]) -> None:
        fields = forecast_of(self.plan, 100 + self.miner.index, lead, truth)
        for name in ALL_VARIABLES:
            values = fields[name].astype(np.float32)
            for level, field_values in (zip(PRESSURE_LEVELS_HPA, values, strict=True)
                                        if is_level_variable(name) else [(None, values)]):
                self.v1[f"{lead}/{name}/{level}"] = len(COMPRESSOR.encode(field_values))
        self.writer.write_lead(lead, _forecast_dataset(self.plan, lead, fields))

    def close(self) -> None:
        self.writer.finalize(JOB_ID, self.wallet)
        self.miner.v1_sizes.write_text(json.dumps(self.v1))


def prepare(workdir: Path, plan: ReferencePlan, miners: list[Miner]) -> ReferencePaths:
    """Build what is not cached yet: the references, then the miners' stores."""
    refs = ReferencePaths(workdir / f"references-{plan.grid_deg}")
    build_refs = not refs.is_built_for(plan)
    pending = [m for m in miners if not m.ready]
    if not build_refs and not pending:
        return refs
    started = time.perf_counter()
    weather = plan.weather()
    if build_refs:
        shutil.rmtree(refs.root, ignore_errors=True)
        refs.root.mkdir(parents=True)
        era5, gfs = Era5Writer(refs.era5, plan), GfsWriter(refs.gfs, plan)
    writers = [MinerWriter(m, plan) for m in pending]
    for lead, truth in truths(plan, weather):
        if build_refs and lead in plan.era5_leads:
            era5.write(lead, truth)
        if build_refs and lead in plan.day1_leads:
            gfs.write(lead, truth)
        for writer in writers:
            writer.write(lead, truth)
        print(f"  lead {lead} h written ({time.perf_counter() - started:.0f} s)", flush=True)
    for writer in writers:
        writer.close()
    if build_refs:
        era5.close()
        gfs.close()
        write_climatology(refs.climatology, plan, weather)
        refs.mark_built(plan)
    print(f"generated in {time.perf_counter() - started:.0f} s", flush=True)
    return refs


# -- measured phases (run in fresh spawned processes) ---------------------------------------
def _vm_hwm_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def _measured(into: dict[str, Any]) -> Iterator[None]:
    cpu, wall = _cpu_s(), time.perf_counter()
    yield
    into["cpu_s"] = round(_cpu_s() - cpu, 3)
    into["wall_s"] = round(time.perf_counter() - wall, 3)


def _now() -> datetime:
    return datetime.now(UTC)


def shared_phase(env: Any, init_time: datetime, era5_leads: tuple[int, ...]) -> dict[str, Any]:
    from gaia.tasks.defined_tasks.weather.pipeline import scoring_tasks
    out: dict[str, Any] = {}
    with _measured(out):
        scoring_tasks.warm_references_task(env, _now(), init_time, era5_leads)
    return out


def day1_phase(env: Any, forecast: Any) -> dict[str, Any]:
    from gaia.tasks.defined_tasks.weather.pipeline import scoring_tasks
    out: dict[str, Any] = {}
    with _measured(out):
        outcome = scoring_tasks.day1_task(env, _now(), forecast)
    out.update(records=len(outcome.records), passed=outcome.verdict.passed,
               clone=outcome.verdict.clone)
    return out


def era5_phase(env: Any, forecast: Any, leads: tuple[int, ...]) -> dict[str, Any]:
    from gaia.tasks.defined_tasks.weather.pipeline import scoring_tasks
    out: dict[str, Any] = {"leads": []}
    with _measured(out):
        for lead in leads:
            one: dict[str, Any] = {"lead": lead}
            with _measured(one):
                one["records"] = len(scoring_tasks.era5_task(env, _now(), forecast, (lead,)))
            out["leads"].append(one)
    return out


def _lead_keys(store: Path, lead: int) -> list[tuple[str, str, int | None]]:
    """(key, variable, level) of every field chunk of ``lead`` in a written store."""
    from gaia.tasks.defined_tasks.weather.forecast_store import chunk_key, load_signed_manifest
    manifest = load_signed_manifest(store).manifest
    index = manifest.lead_hours.index(lead)
    keys = []
    for name in manifest.variables:
        if is_level_variable(name):
            keys += [(chunk_key(name, index, i), name, level)
                     for i, level in enumerate(manifest.levels)]
        else:
            keys.append((chunk_key(name, index, None), name, None))
    return keys


def _decoder() -> Callable[[str, bytes, str, tuple[int, int]], np.ndarray]:
    """The store's codec: the protocol's ``decode_field`` where it exists, else Blosc."""
    try:
        from gaia.tasks.defined_tasks.weather.forecast_codec import decode_field
        return decode_field
    except ImportError:
        def blosc(_key: str, data: bytes, _variable: str, shape: tuple[int, int]) -> np.ndarray:
            return np.frombuffer(COMPRESSOR.decode(data), dtype="<f4").reshape(shape)
        return blosc


def floor_phase(store: str, era5_path: str, climatology_path: str, lead: int) -> dict[str, Any]:
    """Hash + decode + metrics of one lead's bytes already in memory."""
    from gaia.tasks.defined_tasks.weather.data.climatology import ClimatologySource
    from gaia.tasks.defined_tasks.weather.data.era5 import Era5Source
    from gaia.tasks.defined_tasks.weather.scoring.metrics import field_statistics, latitude_weights

    keys = _lead_keys(Path(store), lead)
    blobs = [(Path(store) / key).read_bytes() for key, _, _ in keys]
    valid = INIT_TIME + timedelta(hours=lead)
    fields = [(name, level) for _, name, level in keys]
    truth = Era5Source(era5_path).read_fields(valid, fields)
    clim = ClimatologySource(climatology_path).read_fields(valid, fields)
    weights = latitude_weights(truth.grid.lat).to_numpy()
    decode, shape = _decoder(), truth.grid.shape
    pairs = [(truth[key], clim[key]) for key in fields]
    out: dict[str, Any] = {"fields": len(keys), "bytes": sum(map(len, blobs))}
    with _measured(out):
        for (key, name, _), blob, (truth_values, clim_values) in zip(keys, blobs, pairs, strict=True):
            hashlib.sha256(blob).hexdigest()
            field_statistics(decode(key, blob, name, shape), truth_values, clim_values, weights)
    return out


def _entry(conn: Any, task: Callable[..., dict[str, Any]], args: tuple[Any, ...]) -> None:
    """Spawned-process entry: import the scoring code first, run the task, report."""
    from gaia.tasks.defined_tasks.weather.pipeline import scoring_tasks  # noqa: F401
    try:
        result = task(*args)
    except Exception as error:  # noqa: BLE001 - any failure is the phase's reported outcome
        result = {"error": f"{type(error).__name__}: {error}"}
    result["vm_hwm_bytes"] = _vm_hwm_bytes()
    conn.send(result)
    conn.close()


def _rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except FileNotFoundError:
        pass
    return 0


def run_phase(task: Callable[..., dict[str, Any]], *args: Any, rss_cap: int) -> dict[str, Any]:
    """``task(*args)`` in a fresh spawned process, killed if its RSS passes ``rss_cap``."""
    context = multiprocessing.get_context("spawn")
    receive, send = context.Pipe(duplex=False)
    process = context.Process(target=_entry, args=(send, task, args))
    process.start()
    send.close()
    seen = {"max_rss": 0, "killed": False}

    def watch() -> None:
        while process.is_alive():
            rss = _rss_bytes(process.pid)
            seen["max_rss"] = max(seen["max_rss"], rss)
            if rss > rss_cap:
                seen["killed"] = True
                process.kill()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    result: dict[str, Any] = {}
    try:
        result = receive.recv()
    except EOFError:
        result = {"error": "process ended without a result"}
    process.join()
    watcher.join()
    if seen["killed"]:
        result = {"error": f"killed: resident memory passed {rss_cap / GIB:.1f} GiB after "
                           f"{time.perf_counter() - started:.0f} s",
                  "vm_hwm_bytes": seen["max_rss"], "killed": True}
    return result


# -- the run ---------------------------------------------------------------------------------
@dataclass
class Run:
    plan: ReferencePlan
    refs: ReferencePaths
    miners: list[Miner]
    workdir: Path
    era5_leads: tuple[int, ...]
    rss_cap: int
    servers: dict[str, CountingServer] = field(default_factory=dict)
    miner_servers: list[CountingForecastServer] = field(default_factory=list)
    phases: list[dict[str, Any]] = field(default_factory=list)

    def reference_counts(self) -> dict[str, dict[str, int]]:
        return {name: server.take() for name, server in self.servers.items()}

    def environment(self) -> Any:
        from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import ScoringEnvironment
        cache = self.workdir / "validator-cache"
        shutil.rmtree(cache, ignore_errors=True)
        _wallet(self.workdir / "wallets", "validator")
        settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            wallet=WalletSettings(name="validator", hotkey="default", path=self.workdir / "wallets"),
            data=DataSettings(gfs_base_url=self.servers["gfs"].url, gfs_fallback_url=None,
                              era5_url=self.servers["era5"].url,
                              climatology_url=self.servers["climatology"].url, cache_dir=cache,
                              http_timeout_s=120.0),
        )
        return ScoringEnvironment.from_settings(settings)

    def record(self, name: str, miner: int | None, result: dict[str, Any]) -> dict[str, Any]:
        """One phase's result with the bytes each server answered during it."""
        entry = {"phase": name, "miner": miner, **result, "reference": self.reference_counts(),
                 "miner_traffic": [server.take() for server in self.miner_servers]}
        self.phases.append(entry)
        status = result.get("error") or (f"{result.get('cpu_s')} CPU-s, {result.get('wall_s')} s, "
                                         f"VmHWM {result['vm_hwm_bytes'] / GIB:.2f} GiB")
        print(f"  {name}{'' if miner is None else f' miner {miner}'}: {status}", flush=True)
        return entry


def _commit(env: Any, forecasts: list[Any], announced: list[str], grid: Any) -> list[Any]:
    """The validator's commit step: signed manifest fetched and checked against the run's
    ``grid``, hash recorded."""
    import dataclasses

    from gaia.tasks.defined_tasks.weather.pipeline.scoring_service import ScoringService

    async def commit_all() -> list[Any]:
        service = ScoringService(env, env.signed_client(), processes=0)
        try:
            return [dataclasses.replace(
                        ref, manifest_hash=await service.commit_manifest(ref, h, grid))
                    for ref, h in zip(forecasts, announced, strict=True)]
        finally:
            service.close()
    return asyncio.run(commit_all())


def measure(run: Run) -> None:
    from gaia.tasks.defined_tasks.weather.forecast_store import load_signed_manifest
    from gaia.tasks.defined_tasks.weather.pipeline.forecasts import ForecastRef

    env = run.environment()
    announced = [load_signed_manifest(m.store).manifest_hash for m in run.miners]
    refs = [ForecastRef(run.plan.init_time, server.base_url, server.miner_hotkey, JOB_ID)
            for server in run.miner_servers]
    refs = _commit(env, refs, announced, run.plan.grid)
    run.record("commit (parent)", None, {"vm_hwm_bytes": 0})
    run.record("shared", None, run_phase(shared_phase, env, run.plan.init_time,
                                         run.era5_leads, rss_cap=run.rss_cap))
    for index, ref in enumerate(refs):
        run.record("day1", index, run_phase(day1_phase, env, ref, rss_cap=run.rss_cap))
        run.record("era5", index, run_phase(era5_phase, env, ref, run.era5_leads,
                                            rss_cap=run.rss_cap))
    run.record("floor", None, run_phase(
        floor_phase, str(run.miners[0].store), str(run.refs.era5), str(run.refs.climatology),
        run.era5_leads[0], rss_cap=run.rss_cap))


@contextmanager
def serving_all(run: Run) -> Iterator[None]:
    with ExitStack() as stack:
        for name, root in (("era5", run.refs.era5), ("climatology", run.refs.climatology),
                           ("gfs", run.refs.gfs)):
            run.servers[name] = stack.enter_context(CountingServer(root))
        for miner in run.miners:
            hotkey = _wallet(miner.wallets, f"miner{miner.index}").hotkey.ss58_address
            server = stack.enter_context(serving(CountingForecastServer(miner_hotkey=hotkey)))
            server.stores[JOB_ID] = miner.store
            run.miner_servers.append(server)
        yield


# -- figures ---------------------------------------------------------------------------------
def _median(values: list[float]) -> float | None:
    return round(statistics.median(values), 3) if values else None


def _v1_field_bytes(miner: Miner, plan: ReferencePlan, era5_leads: tuple[int, ...]) -> int:
    """Today's codec's bytes for the fields the run reads: day-1's fields at the day-1 leads
    (as ``scoring_tasks`` reads them) and every field at each scored ERA5 lead."""
    from gaia.tasks.defined_tasks.weather.scoring.day1 import DAY1_FIELDS
    day1_fields = {(name, None if level is None else str(level)) for name, level in DAY1_FIELDS}
    sizes = json.loads(miner.v1_sizes.read_text())
    total = 0
    for key, size in sizes.items():
        lead, name, level = key.split("/")
        day1 = int(lead) in plan.day1_leads and (name, None if level == "None" else level) in day1_fields
        total += size if day1 or int(lead) in era5_leads else 0
    return total


def summarize(run: Run) -> dict[str, Any]:
    phases = [p for p in run.phases if not p.get("error")]
    by = {name: [p for p in phases if p["phase"] == name] for name in ("shared", "day1", "era5")}
    leads_measured = len(run.era5_leads)
    scale = len(ERA5_LEAD_HOURS) / leads_measured
    per_miner = []
    for miner in range(len(run.miners)):
        day1 = [p for p in by["day1"] if p["miner"] == miner]
        era5 = [p for p in by["era5"] if p["miner"] == miner]
        if day1 and era5:
            per_miner.append(day1[0]["cpu_s"] + scale * era5[0]["cpu_s"])
    miner_bytes = [sum(p["miner_traffic"][m]["bytes"] for p in run.phases)
                   for m in range(len(run.miners))]
    commit = next(p for p in run.phases if p["phase"].startswith("commit"))
    scoring = [p for p in run.phases if p["phase"] in ("shared", "day1", "era5")]
    floor = next((p for p in phases if p["phase"] == "floor"), None)
    v1 = [_v1_field_bytes(m, run.plan, run.era5_leads) for m in run.miners]
    reference_by_store = {name: sum(p["reference"][name]["bytes"] for p in run.phases)
                          for name in run.servers}
    return {
        "grid_deg": run.plan.grid_deg,
        "miners": len(run.miners),
        "per_miner_cpu_s": _median(per_miner),
        "shared_cpu_s": round(sum(p["cpu_s"] for p in by["shared"]), 3),
        "peak_rss_bytes": max((p["vm_hwm_bytes"] for p in scoring), default=None),
        "reference_bytes": sum(reference_by_store.values()),
        "miner_bytes_per_miner": _median([float(b) for b in miner_bytes]),
        "era5_lead_wall_s": _median([statistics.median(lead["wall_s"] for lead in p["leads"])
                                     for p in by["era5"]]),
        "day1_wall_s": _median([p["wall_s"] for p in by["day1"]]),
        "era5_leads_measured": list(run.era5_leads),
        "per_miner_cpu_note": (f"day-1 + {len(ERA5_LEAD_HOURS)} ERA5 leads" if scale == 1 else
                               f"day-1 + ERA5 CPU of {leads_measured} lead(s) x {scale:g}"),
        "era5_lead_cpu_s": _median([statistics.median(lead["cpu_s"] for lead in p["leads"])
                                    for p in by["era5"]]),
        "day1_cpu_s": _median([p["cpu_s"] for p in by["day1"]]),
        "shared_wall_s": round(sum(p["wall_s"] for p in by["shared"]), 3),
        "reference_bytes_by_store": reference_by_store,
        "reference_gets": sum(sum(c["gets"] for c in p["reference"].values()) for p in run.phases),
        "commit_reference_bytes": sum(c["bytes"] for c in commit["reference"].values()),
        "v1_codec_field_bytes_per_miner": _median([float(b) for b in v1]),
        "floor_cpu_s": floor["cpu_s"] if floor else None,
        "floor_fields": floor["fields"] if floor else None,
        "errors": [f"{p['phase']} {p['miner']}: {p['error']}" for p in run.phases if p.get("error")],
        "phases": run.phases,
    }


def report(summary: dict[str, Any]) -> None:
    print("\n| phase | miner | CPU-s | wall s | VmHWM GiB | reference MB | miner MB |")
    print("|---|---|---|---|---|---|---|")
    for p in summary["phases"]:
        ref_mb = sum(c["bytes"] for c in p["reference"].values()) / 1e6
        miner_mb = sum(c["bytes"] for c in p["miner_traffic"]) / 1e6
        cpu = p.get("cpu_s", p.get("error", "—"))
        print(f"| {p['phase']} | {'' if p['miner'] is None else p['miner']} | {cpu} | "
              f"{p.get('wall_s', '—')} | {p['vm_hwm_bytes'] / GIB:.2f} | {ref_mb:.1f} | "
              f"{miner_mb:.1f} |")
        for lead in p.get("leads", []):
            print(f"|   lead {lead['lead']} h | | {lead['cpu_s']} | {lead['wall_s']} | | | |")
    keys = ("grid_deg", "miners", "per_miner_cpu_s", "per_miner_cpu_note", "shared_cpu_s",
            "peak_rss_bytes", "reference_bytes", "reference_bytes_by_store",
            "miner_bytes_per_miner", "v1_codec_field_bytes_per_miner", "era5_lead_wall_s",
            "era5_lead_cpu_s", "day1_wall_s", "day1_cpu_s", "floor_cpu_s", "errors")
    print()
    for key in keys:
        print(f"{key}: {summary[key]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--miners", type=int, default=8)
    parser.add_argument("--grid-deg", type=float, default=0.25)
    parser.add_argument("--era5-leads", type=int, default=len(ERA5_LEAD_HOURS),
                        help="score the first N ERA5 leads (per-miner CPU is scaled to all)")
    parser.add_argument("--workdir", type=Path,
                        default=Path(tempfile.gettempdir()) / "gaia-validator-cost")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--rss-cap-gib", type=float, default=6.0,
                        help="kill a phase whose resident memory passes this")
    args = parser.parse_args()
    plan = ReferencePlan(args.grid_deg, INIT_TIME, DAY1_LEAD_HOURS, ERA5_LEAD_HOURS)
    miners = [Miner(i, args.workdir / f"miners-{args.grid_deg}" / f"miner{i}")
              for i in range(args.miners)]
    refs = prepare(args.workdir, plan, miners)
    run = Run(plan, refs, miners, args.workdir, ERA5_LEAD_HOURS[:args.era5_leads],
              int(args.rss_cap_gib * GIB))
    with serving_all(run):
        measure(run)
    summary = summarize(run)
    report(summary)
    if args.json:
        args.json.write_text(json.dumps(summary, indent=1, default=str))


if __name__ == "__main__":
    main()

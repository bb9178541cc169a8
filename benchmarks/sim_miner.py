"""A fleet of light simulated miners in one process, for ``benchmarks/pipeline.py``.

Every miner has its own real wallet (hotkey) and its own loopback port and speaks the real
protocol (``protocol.py``): ``initiate-fetch`` answers the deterministic job id; the job
status is ``fetching_inputs`` for the miner's input time I, then ``inference_running`` for
D seconds, then ``forecast_ready`` with the hash of a real manifest signed by the miner's
hotkey; ``/weather/forecasts/{job_id}/manifest.json`` and ``/{key}`` serve the signed
manifest and the zarr files of a real forecast store. The miners sleep instead of
forecasting. Simplifications, said plainly:

* the validator's request signatures are **not verified** (the validator still signs);
* the store is written once (``ForecastStoreWriter``: persistence of the archive's GFS
  inputs at the day-1 leads 6, 12, 24 h, all 69 fields) and its file list is signed by
  every miner under its own job id and hotkey, so all miners serve the same bytes.

``barrier`` models the old flow: no miner's inference starts until every miner has been
asked and has finished its input phase (what confirming every miner's inputs forced), and
not before ``hash_wait_s`` after the last ask (the old validator's fixed wait for the input
hashes, 10 min in production; 0 in the compressed real-time mode).

Every answer is a pure function of the fleet's clock (``Fleet.now``, Unix seconds): wall time
for the process run below, or a virtual clock when ``benchmarks/pipeline.py --clock virtual``
hosts the fleet in its own event loop (:func:`start_fleet`). Inference time D is the same
for every miner (``inference_s``) or uniform per miner in ``[inference_min_s,
inference_max_s]`` (seed ``seed + 1``); progress is reported over the protocol's 40 leads.

    python benchmarks/sim_miner.py CONFIG.json

``CONFIG.json`` is a :class:`SimConfig`. Once serving, the fleet writes ``ready_path``; on
SIGTERM it stops and writes ``events_path`` (per miner: asked at, input seconds, inference
start, ready at; Unix seconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import bittensor as bt
import uvicorn
from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.forecast_manifest import SignedManifest, sign_manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    MANIFEST_FILE,
    ForecastStoreWriter,
    StoreKeyRejected,
    store_file_path,
)
from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs
from gaia.tasks.defined_tasks.weather.inference.registry import get_model
from gaia.tasks.defined_tasks.weather.protocol import (
    InitiateFetchRequest,
    InitiateFetchResponse,
    JobProgress,
    JobStatusResponse,
    MinerJobStatus,
    job_id_for,
    manifest_url_path,
)
from gaia.tasks.defined_tasks.weather.variables import FORECAST_LEAD_HOURS, PRESSURE_LEVELS_HPA

SIM_LEAD_HOURS: tuple[int, ...] = (6, 12, 24)


class SimMinerSpec(BaseModel):
    wallet_name: str
    wallet_path: str
    port: int


class SimConfig(BaseModel):
    miners: list[SimMinerSpec]
    init_time: datetime
    gfs_base_url: str
    work_dir: Path
    inference_s: float
    input_min_s: float
    input_max_s: float
    seed: int
    barrier: bool
    ready_path: Path
    events_path: Path
    hash_wait_s: float = 0.0  # barrier only: fixed wait after the last ask
    inference_min_s: float | None = None  # with inference_max_s: D ~ U(min, max) per miner
    inference_max_s: float | None = None


@dataclass
class SimMiner:
    hotkey: str
    port: int
    job_id: str
    input_s: float
    inference_s: float
    signed: SignedManifest
    asked_at: float | None = None


def input_times(count: int, low: float, high: float, seed: int) -> list[float]:
    """Per-miner input phase lengths, uniform in [low, high], reproducible by seed."""
    rng = random.Random(seed)
    return [rng.uniform(low, high) for _ in range(count)]


def inference_times(count: int, config: SimConfig) -> list[float]:
    """Per-miner D: fixed, or uniform in [inference_min_s, inference_max_s] (seed + 1)."""
    if config.inference_min_s is None or config.inference_max_s is None:
        return [config.inference_s] * count
    return input_times(count, config.inference_min_s, config.inference_max_s, config.seed + 1)


class Fleet:
    """The miners' shared clock: who was asked when, and what each one reports now."""

    def __init__(self, miners: list[SimMiner], barrier: bool, *, hash_wait_s: float = 0.0,
                 now: Callable[[], float] = time.time) -> None:
        self.by_port = {m.port: m for m in miners}
        self.barrier, self.hash_wait_s, self.now = barrier, hash_wait_s, now

    def inference_start(self, miner: SimMiner) -> float | None:
        if miner.asked_at is None:
            return None
        if not self.barrier:
            return miner.asked_at + miner.input_s
        if any(m.asked_at is None for m in self.by_port.values()):
            return None
        asked = [m.asked_at for m in self.by_port.values()]
        inputs = max(m.asked_at + m.input_s for m in self.by_port.values())  # type: ignore[operator]
        return max(inputs, max(asked) + self.hash_wait_s)  # type: ignore[type-var, operator]

    def ready_at(self, miner: SimMiner) -> float | None:
        start = self.inference_start(miner)
        return None if start is None else start + miner.inference_s

    def status(self, miner: SimMiner, now: float) -> JobStatusResponse:
        start, total = self.inference_start(miner), len(FORECAST_LEAD_HOURS)
        if start is None or now < start:
            state, done = MinerJobStatus.FETCHING_INPUTS, 0
        elif now < start + miner.inference_s:
            state = MinerJobStatus.INFERENCE_RUNNING
            done = int(total * (now - start) / miner.inference_s)
        else:
            state, done = MinerJobStatus.FORECAST_READY, total
        ready = state is MinerJobStatus.FORECAST_READY
        return JobStatusResponse(
            job_id=miner.job_id, gfs_init_time=miner.signed.manifest.init_datetime, status=state,
            progress=JobProgress(leads_done=done, leads_total=total),
            manifest_hash=miner.signed.manifest_hash if ready else None,
            manifest_url=manifest_url_path(miner.job_id) if ready else None,
        )

    def events(self) -> list[dict[str, object]]:
        return [{"hotkey": m.hotkey, "asked_at": m.asked_at, "input_s": m.input_s,
                 "inference_start": self.inference_start(m), "ready_at": self.ready_at(m)}
                for m in self.by_port.values()]


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


def build_app(fleet: Fleet, store_root: Path) -> Starlette:
    """One app for every miner; the local port of the connection says which miner answers."""

    def miner_of(request: Request) -> SimMiner:
        return fleet.by_port[int(request.scope["server"][1])]

    def job_of(request: Request) -> SimMiner | None:
        miner = miner_of(request)
        return miner if request.path_params["job_id"] == miner.job_id else None

    async def initiate(request: Request) -> Response:
        miner = miner_of(request)
        try:
            body = InitiateFetchRequest.model_validate_json(await request.body())
        except ValidationError as error:
            return _error(422, "invalid_request", str(error.errors()[0]["msg"]))
        if body.expected_miner_hotkey != miner.hotkey:
            return _error(409, "wrong_miner", f"this miner is {miner.hotkey}")
        if miner.asked_at is None:
            miner.asked_at = fleet.now()
        status = fleet.status(miner, fleet.now()).status
        return JSONResponse(InitiateFetchResponse(job_id=miner.job_id, status=status).model_dump())

    async def job_status(request: Request) -> Response:
        miner = job_of(request)
        if miner is None or miner.asked_at is None:
            return _error(404, "not_found", "no such job")
        return JSONResponse(fleet.status(miner, fleet.now()).model_dump(mode="json"))

    async def forecast_file(request: Request) -> Response:
        miner, key = job_of(request), request.path_params["key"]
        if miner is None or fleet.status(miner, fleet.now()).status is not MinerJobStatus.FORECAST_READY:
            return _error(404, "not_found", "no forecast for this job yet")
        if key == MANIFEST_FILE:
            return Response(miner.signed.to_json_bytes(), media_type="application/json")
        try:
            path = store_file_path(store_root, key, miner.signed.manifest)
        except StoreKeyRejected as error:
            return _error(404, "not_found", str(error))
        return Response(path.read_bytes(), media_type="application/octet-stream")

    return Starlette(routes=[
        Route("/weather/initiate-fetch", initiate, methods=["POST"]),
        Route("/weather/jobs/{job_id}", job_status, methods=["GET"]),
        Route("/weather/forecasts/{job_id}/{key:path}", forecast_file, methods=["GET"]),
    ])


async def write_store(config: SimConfig, first: bt.Wallet) -> tuple[Path, SignedManifest]:
    """Persistence of the archive's GFS inputs at the day-1 leads, signed by ``first``."""
    async with GfsSource(config.gfs_base_url, config.work_dir / "gfs-cache") as gfs:
        inputs = ForecastInputs.from_dataset(await gfs.fetch_inputs(config.init_time))
    root = config.work_dir / "store"
    writer = ForecastStoreWriter(root, grid=inputs.grid, init_time=inputs.init_time,
                                 levels=PRESSURE_LEVELS_HPA, lead_hours=SIM_LEAD_HOURS)
    for lead, state in get_model("persistence").forecast(inputs, SIM_LEAD_HOURS):
        writer.write_lead(lead, state)
    job_id = job_id_for(first.hotkey.ss58_address, config.init_time)
    return root, writer.finalize(job_id, first)


def build_miners(config: SimConfig, wallets: list[bt.Wallet], template: SignedManifest) -> list[SimMiner]:
    times = input_times(len(wallets), config.input_min_s, config.input_max_s, config.seed)
    durations = inference_times(len(wallets), config)
    miners = []
    for spec, wallet, input_s, inference_s in zip(config.miners, wallets, times, durations,
                                                  strict=True):
        hotkey = wallet.hotkey.ss58_address
        job_id = job_id_for(hotkey, config.init_time)
        manifest = template.manifest.model_copy(update={"job_id": job_id, "miner_hotkey": hotkey})
        miners.append(SimMiner(hotkey, spec.port, job_id, input_s, inference_s,
                               sign_manifest(manifest, wallet)))
    return miners


def _sockets(ports: list[int]) -> list[socket.socket]:
    sockets = []
    for port in ports:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port))
        sockets.append(sock)
    return sockets


class _QuietServer(uvicorn.Server):
    """uvicorn that writes ``ready_path`` once listening, without its own signal handling
    (it re-raises SIGTERM after stopping, which would kill the process before the events
    are written); ``stop`` ends it."""

    def __init__(self, config: uvicorn.Config, ready_path: Path | None) -> None:
        super().__init__(config)
        self.ready_path = ready_path

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.ready_path is not None:
            self.ready_path.write_text("ready")

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True


async def prepare(config: SimConfig, now: Callable[[], float] = time.time,
                  ready_path: Path | None = None) -> tuple[Fleet, _QuietServer]:
    """The fleet and its (not yet serving) server; ``server.serve(sockets=...)`` runs it."""
    wallets = [bt.Wallet(name=m.wallet_name, hotkey="default", path=m.wallet_path)
               for m in config.miners]
    store_root, template = await write_store(config, wallets[0])
    fleet = Fleet(build_miners(config, wallets, template), config.barrier,
                  hash_wait_s=config.hash_wait_s, now=now)
    app = build_app(fleet, store_root)
    server = _QuietServer(uvicorn.Config(app, log_level="warning", access_log=False,
                                         lifespan="off", backlog=4096), ready_path)
    return fleet, server


@contextlib.asynccontextmanager
async def start_fleet(config: SimConfig, now: Callable[[], float]):  # type: ignore[no-untyped-def]
    """Serve the fleet in the running event loop (answers follow ``now``) until the block ends."""
    fleet, server = await prepare(config, now)
    task = asyncio.create_task(server.serve(sockets=_sockets([m.port for m in config.miners])))
    try:
        while not server.started:
            if task.done():
                task.result()
                raise RuntimeError("the simulated miners' server stopped before serving")
            await asyncio.sleep(0.05)
        yield fleet
    finally:
        server.stop()
        await task


async def serve(config: SimConfig) -> Fleet:
    fleet, server = await prepare(config, ready_path=config.ready_path)
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, server.stop)
    sockets = _sockets([m.port for m in config.miners])
    await server.serve(sockets=sockets)
    return fleet


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python benchmarks/sim_miner.py CONFIG.json", file=sys.stderr)
        return 2
    config = SimConfig.model_validate_json(Path(argv[0]).read_text())
    fleet = asyncio.run(serve(config))
    config.events_path.write_text(json.dumps(fleet.events()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

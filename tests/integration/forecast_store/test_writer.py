"""The forecast store writer on real zarr files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import bittensor as bt
import numpy as np
import pytest
import xarray as xr
from numcodecs import BitRound

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.forecast_codec import KEEPBITS
from gaia.tasks.defined_tasks.weather.forecast_manifest import verify_signed_manifest
from gaia.tasks.defined_tasks.weather.forecast_store import (
    ForecastStoreWriter,
    ForecastWriteError,
    chunk_key,
    load_signed_manifest,
    manifest_file,
)
from gaia.tasks.defined_tasks.weather.inference import get_model
from tests.fixtures.forecast_store import (
    INIT_TIME,
    SMALL_LEADS,
    new_keypair,
    small_inputs,
    write_small_forecast,
)


def _rounded(variable: str, values: np.ndarray) -> np.ndarray:
    return BitRound(KEEPBITS[variable]).encode(values).view(np.float32).reshape(values.shape)


def test_forecast_reads_back_equal_lead_by_lead(tmp_path: Path) -> None:
    written = write_small_forecast(tmp_path / "job-1", new_keypair())
    stored = xr.open_zarr(written.root, consolidated=True, zarr_format=3, chunks=None)
    assert stored["lead_hours"].values.tolist() == list(SMALL_LEADS)
    for lead, state in written.leads.items():
        expected = state.squeeze("time", drop=True).astype(np.float32)
        for name in expected.data_vars:  # protocol v2 stores each field bit-rounded
            expected[name] = expected[name].copy(data=_rounded(name, expected[name].values))
        got = stored.sel(lead_hours=lead).drop_vars("lead_hours").load()
        xr.testing.assert_equal(got[list(expected.data_vars)].reset_coords(drop=True),
                                expected.reset_coords(drop=True))
    assert stored["z"].encoding["chunks"] == (1, 1, *written.signed.manifest.grid.to_grid().shape)


def test_every_file_is_listed_with_its_true_size_and_sha256(tmp_path: Path) -> None:
    written = write_small_forecast(tmp_path / "job-1", new_keypair())
    files = written.signed.manifest.files
    on_disk = {
        p.relative_to(written.root).as_posix() for p in written.root.rglob("*") if p.is_file()
    }
    assert on_disk == set(files) | {"manifest.json"}
    for key, entry in files.items():
        data = (written.root / key).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (entry.size, entry.sha256), key
    assert chunk_key("z", 3, 1) in files and chunk_key("2t", 0, None) in files


def test_published_manifest_is_signed_by_the_miner(tmp_path: Path) -> None:
    keypair = new_keypair()
    written = write_small_forecast(tmp_path / "job-9", keypair, job_id="job-9")
    document = manifest_file(written.root).read_bytes()
    verified = verify_signed_manifest(document, keypair.ss58_address)
    assert verified == load_signed_manifest(written.root) == written.signed
    manifest = verified.manifest
    assert (manifest.job_id, manifest.init_time) == ("job-9", "2026-11-20T12:00:00Z")
    assert manifest.lead_hours == SMALL_LEADS and manifest.levels == (500, 850)


def _writer(root: Path, leads: tuple[int, ...] = SMALL_LEADS) -> ForecastStoreWriter:
    inputs = small_inputs()
    return ForecastStoreWriter(root, grid=inputs.grid, init_time=INIT_TIME,
                               variables=inputs.variables, levels=inputs.levels, lead_hours=leads)


def test_rerun_after_crash_starts_clean_and_finished_store_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "job-1"
    crashed = _writer(root)
    crashed.write_lead(6, next(get_model("persistence").forecast(small_inputs(), [6]))[1])
    (crashed.partial / "stray-file").write_bytes(b"left by the crash")
    assert not root.exists()
    write_small_forecast(root, new_keypair())
    assert not (root / "stray-file").exists() and not crashed.partial.exists()
    with pytest.raises(FileExistsError):
        _writer(root)


def test_finalize_refuses_missing_leads_and_foreign_grids(tmp_path: Path) -> None:
    inputs = small_inputs()
    writer = _writer(tmp_path / "job-1", leads=(6, 12))
    _, state = next(get_model("persistence").forecast(inputs, [6]))
    writer.write_lead(6, state)
    with pytest.raises(ForecastWriteError, match=r"never written: \[12\]"):
        writer.finalize("job-1", new_keypair())
    with pytest.raises(ForecastWriteError, match="not one of"):
        writer.write_lead(18, state)
    other = small_inputs(grid=Grid.regular(5.0))
    _, foreign = next(get_model("persistence").forecast(other, [12]))
    with pytest.raises(ForecastWriteError, match="grid"):
        writer.write_lead(12, foreign)
    with pytest.raises(ForecastWriteError, match="must be valid at 2026-11-21T00:00"):
        writer.write_lead(12, state)
    _, state12 = next(get_model("persistence").forecast(inputs, [12]))
    with pytest.raises(ForecastWriteError, match="missing variable 'z'"):
        writer.write_lead(12, state12.drop_vars("z"))
    with pytest.raises(ForecastWriteError, match=r"'t' lacks levels \[850\]"):
        writer.write_lead(12, state12.sel(level=[500]))


def test_a_wallet_on_disk_signs_with_its_hotkey(tmp_path: Path) -> None:
    wallet = bt.Wallet(name="miner", hotkey="default", path=str(tmp_path / "wallets"))
    wallet.create_new_coldkey(use_password=False, suppress=True)
    wallet.create_new_hotkey(use_password=False, suppress=True)
    inputs = small_inputs()
    writer = _writer(tmp_path / "job-w", leads=(6,))
    writer.write_lead(6, next(get_model("persistence").forecast(inputs, [6]))[1])
    signed = writer.finalize("job-w", wallet)
    hotkey = wallet.hotkey.ss58_address
    assert signed.signer == signed.manifest.miner_hotkey == hotkey
    assert verify_signed_manifest(manifest_file(tmp_path / "job-w").read_bytes(), hotkey) == signed

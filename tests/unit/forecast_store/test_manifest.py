"""Manifest canonical form, hash and sr25519 signature."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from bittensor.sp_core import Keypair

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.forecast_manifest import (
    FileEntry,
    GridSpec,
    Manifest,
    ManifestInvalid,
    SignedManifest,
    format_init_time,
    manifest_hash,
    sign_manifest,
    verify_signed_manifest,
)


def _keypair() -> Keypair:
    return Keypair.create_from_mnemonic(Keypair.generate_mnemonic())


def _manifest(hotkey: str, **changes: object) -> Manifest:
    fields: dict[str, object] = {
        "format_version": 1,
        "protocol_version": "1",
        "job_id": "job-7",
        "miner_hotkey": hotkey,
        "init_time": "2026-11-28T12:00:00Z",
        "grid": GridSpec.from_grid(Grid.regular(1.0)),
        "variables": ("2t", "z"),
        "levels": (500, 850),
        "lead_hours": (6, 12),
        "files": {
            "zarr.json": FileEntry(size=120, sha256="a" * 64),
            "2t/c/0/0/0": FileEntry(size=9000, sha256="b" * 64),
        },
    }
    fields.update(changes)
    return Manifest.model_validate(fields)


def test_canonical_bytes_sorted_compact_and_hashed() -> None:
    manifest = _manifest("5FakeHotkey")
    raw = manifest.canonical_bytes()
    assert b" " not in raw and b"\n" not in raw
    decoded = json.loads(raw)
    assert list(decoded) == sorted(decoded)
    assert list(decoded["files"]) == ["2t/c/0/0/0", "zarr.json"]
    assert list(decoded["grid"]) == sorted(decoded["grid"])
    assert manifest_hash(manifest) == hashlib.sha256(raw).hexdigest()
    assert json.dumps(decoded, sort_keys=True, separators=(",", ":")).encode() == raw


def test_hash_is_stable_and_changes_with_any_field() -> None:
    base = _manifest("5FakeHotkey")
    assert manifest_hash(base) == manifest_hash(_manifest("5FakeHotkey"))
    changed = [
        _manifest("5FakeHotkey", job_id="job-8"),
        _manifest("5FakeHotkey", lead_hours=(6, 18)),
        _manifest("5FakeHotkey", init_time="2026-11-28T18:00:00Z"),
        _manifest("5FakeHotkey", files={"zarr.json": FileEntry(size=121, sha256="a" * 64)}),
    ]
    assert len({manifest_hash(m) for m in changed} | {manifest_hash(base)}) == 5


def test_rejects_bad_init_time_and_digest() -> None:
    with pytest.raises(ValueError, match="init_time"):
        _manifest("5Fake", init_time="2026-11-28 12:00")
    with pytest.raises(ValueError, match="sha256"):
        FileEntry(size=1, sha256="XYZ")


def test_signature_verifies_with_the_miner_key_only() -> None:
    miner, other = _keypair(), _keypair()
    signed = sign_manifest(_manifest(miner.ss58_address), miner)
    document = signed.to_json_bytes()
    verified = verify_signed_manifest(document, miner.ss58_address)
    assert verified.manifest_hash == signed.manifest_hash
    with pytest.raises(ManifestInvalid, match="expected the miner"):
        verify_signed_manifest(document, other.ss58_address)


def test_signature_by_another_key_fails() -> None:
    miner, impostor = _keypair(), _keypair()
    manifest = _manifest(miner.ss58_address)
    forged_signature = "0x" + bytes(impostor.sign(manifest.canonical_bytes())).hex()
    forged = SignedManifest(manifest=manifest, signature=forged_signature, signer=miner.ss58_address)
    with pytest.raises(ManifestInvalid, match="does not verify"):
        verify_signed_manifest(forged.to_json_bytes(), miner.ss58_address)


def test_modified_manifest_fails_verification() -> None:
    miner = _keypair()
    document = json.loads(sign_manifest(_manifest(miner.ss58_address), miner).to_json_bytes())
    document["manifest"]["files"]["2t/c/0/0/0"]["size"] = 9001
    with pytest.raises(ManifestInvalid, match="does not verify"):
        verify_signed_manifest(json.dumps(document).encode(), miner.ss58_address)


def test_unknown_fields_and_garbage_are_malformed() -> None:
    miner = _keypair()
    document = json.loads(sign_manifest(_manifest(miner.ss58_address), miner).to_json_bytes())
    document["manifest"]["extra"] = 1
    with pytest.raises(ManifestInvalid, match="malformed"):
        verify_signed_manifest(json.dumps(document).encode(), miner.ss58_address)
    with pytest.raises(ManifestInvalid, match="malformed"):
        verify_signed_manifest(b"not json", miner.ss58_address)


def test_signer_must_be_the_manifest_miner() -> None:
    miner, other = _keypair(), _keypair()
    with pytest.raises(ValueError, match="not the manifest's miner"):
        sign_manifest(_manifest(miner.ss58_address), other)


def test_grid_spec_round_trips_through_grid() -> None:
    grid = Grid.regular(0.25)
    rebuilt = GridSpec.from_grid(grid).to_grid()
    assert rebuilt.shape == grid.shape
    assert abs(rebuilt.lat - grid.lat).max() < 1e-9
    assert abs(rebuilt.lon - grid.lon).max() < 1e-9


def test_init_time_formats_naive_aware_and_numpy_times_as_utc_z() -> None:
    expected = "2026-11-28T12:00:00Z"
    assert format_init_time(datetime(2026, 11, 28, 12)) == expected
    assert format_init_time(datetime(2026, 11, 28, 13, tzinfo=timezone(timedelta(hours=1)))) == expected
    assert format_init_time(np.datetime64("2026-11-28T12:00:00.000000000")) == expected

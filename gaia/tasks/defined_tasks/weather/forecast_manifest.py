"""The forecast manifest: the miner's signed commitment to every byte of its forecast.

Wire form (``manifest.json`` served beside the store)::

    {"manifest": {...}, "signature": "0x<sr25519 over the canonical bytes>", "signer": "<ss58>"}

The canonical bytes of a manifest are its JSON with sorted keys, no spaces, UTF-8;
``manifest_hash`` is the sha256 hex of those bytes. The validator records that hash
when the forecast is committed and checks every later read against it.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime
from typing import Annotated, Final, Literal

import numpy as np
from bittensor.signing import WalletLike, resolve_signer
from bittensor.sp_core import CRYPTO_SR25519
from bittensor.sp_core import verify as sr25519_verify
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from gaia.tasks.defined_tasks.weather.data.grid import Grid

MANIFEST_FORMAT_VERSION: Final = 1
INIT_TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_SIGNATURE_HEX = re.compile(r"^0x[0-9a-f]{128}$")


class ManifestInvalid(ValueError):
    """A manifest document is malformed, unsigned by the expected key, or inconsistent."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileEntry(_Frozen):
    """One file of the store: its exact size in bytes and its sha256 (lowercase hex)."""

    size: Annotated[int, Field(ge=0)]
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _hex_digest(cls, value: str) -> str:
        if not _SHA256_HEX.match(value):
            raise ValueError(f"sha256 must be 64 lowercase hex characters, got {value!r}")
        return value


class GridSpec(_Frozen):
    """A regular grid, exactly as ``Grid.to_dict`` describes it (first/last/count per axis)."""

    lat_first: float
    lat_last: float
    n_lat: Annotated[int, Field(ge=2)]
    lon_first: float
    lon_last: float
    n_lon: Annotated[int, Field(ge=2)]

    @classmethod
    def from_grid(cls, grid: Grid) -> GridSpec:
        return cls.model_validate(grid.to_dict())

    def to_grid(self) -> Grid:
        return Grid(
            latitudes=tuple(np.linspace(self.lat_first, self.lat_last, self.n_lat).tolist()),
            longitudes=tuple(np.linspace(self.lon_first, self.lon_last, self.n_lon).tolist()),
        )


def format_init_time(value: datetime | np.datetime64) -> str:
    """ISO 8601 UTC with a 'Z', whole seconds: ``2026-11-28T12:00:00Z``.

    Naive datetimes and ``numpy.datetime64`` values are taken as UTC (as stored everywhere
    in the project); aware datetimes are converted.
    """
    if isinstance(value, np.datetime64):
        value = datetime.fromisoformat(str(value.astype("datetime64[s]")))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime(INIT_TIME_FORMAT)


class Manifest(_Frozen):
    """What a forecast store holds, down to every file's size and hash."""

    format_version: Literal[1]
    protocol_version: str
    job_id: Annotated[str, Field(min_length=1)]
    miner_hotkey: Annotated[str, Field(min_length=1)]
    init_time: str
    grid: GridSpec
    variables: tuple[str, ...]
    levels: tuple[int, ...]
    lead_hours: tuple[int, ...]
    files: dict[str, FileEntry]

    @field_validator("init_time")
    @classmethod
    def _utc_z(cls, value: str) -> str:
        try:
            datetime.strptime(value, INIT_TIME_FORMAT)
        except ValueError as error:
            raise ValueError(f"init_time must look like 2026-11-28T12:00:00Z, got {value!r}") from error
        return value

    @property
    def init_datetime(self) -> datetime:
        return datetime.strptime(self.init_time, INIT_TIME_FORMAT).replace(tzinfo=UTC)

    def canonical_bytes(self) -> bytes:
        """Sorted keys, no spaces, UTF-8: the bytes that are hashed and signed."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")

    @property
    def manifest_hash(self) -> str:
        return manifest_hash(self)


def manifest_hash(manifest: Manifest) -> str:
    """sha256 hex of the manifest's canonical bytes."""
    return hashlib.sha256(manifest.canonical_bytes()).hexdigest()


class SignedManifest(_Frozen):
    """The served ``manifest.json``: the manifest, its signature and the signing hotkey."""

    manifest: Manifest
    signature: str
    signer: Annotated[str, Field(min_length=1)]

    @field_validator("signature")
    @classmethod
    def _signature_hex(cls, value: str) -> str:
        if not _SIGNATURE_HEX.match(value):
            raise ValueError("signature must be '0x' and 128 lowercase hex characters")
        return value

    @property
    def manifest_hash(self) -> str:
        return manifest_hash(self.manifest)

    def to_json_bytes(self) -> bytes:
        """The document as served (canonical form too, so it is byte-stable)."""
        return json.dumps(
            self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode("utf-8")


def sign_manifest(manifest: Manifest, signer: WalletLike) -> SignedManifest:
    """Sign with the hotkey of ``signer`` (a ``Wallet`` or a keypair); it must be the miner's."""
    key = resolve_signer(signer, role="hotkey")
    if key.crypto_type != CRYPTO_SR25519:
        raise ValueError("manifests are signed with sr25519 hotkeys only")
    if key.ss58_address != manifest.miner_hotkey:
        raise ValueError(
            f"signer {key.ss58_address} is not the manifest's miner hotkey {manifest.miner_hotkey}"
        )
    signature = bytes(key.sign(manifest.canonical_bytes()))
    return SignedManifest(manifest=manifest, signature="0x" + signature.hex(), signer=key.ss58_address)


def parse_signed_manifest(document: bytes) -> SignedManifest:
    """Parse a ``manifest.json`` document (no signature check); ``ManifestInvalid`` if malformed."""
    try:
        return SignedManifest.model_validate_json(document, strict=True)
    except ValidationError as error:
        raise ManifestInvalid(f"malformed manifest document: {error}") from error


def check_signature(signed: SignedManifest, expected_signer_ss58: str) -> None:
    """Raise ``ManifestInvalid`` unless ``expected_signer_ss58`` signed this very manifest."""
    if signed.signer != expected_signer_ss58:
        raise ManifestInvalid(
            f"manifest signed by {signed.signer}, expected the miner {expected_signer_ss58}"
        )
    if signed.manifest.miner_hotkey != expected_signer_ss58:
        raise ManifestInvalid(
            f"manifest names miner {signed.manifest.miner_hotkey}, expected {expected_signer_ss58}"
        )
    signature = bytes.fromhex(signed.signature.removeprefix("0x"))
    try:
        valid = sr25519_verify(
            signed.manifest.canonical_bytes(), signature, expected_signer_ss58, CRYPTO_SR25519
        )
    except ValueError as error:
        raise ManifestInvalid(f"cannot check manifest signature: {error}") from error
    if not valid:
        raise ManifestInvalid(f"manifest signature does not verify for {expected_signer_ss58}")


def verify_signed_manifest(document: bytes, expected_signer_ss58: str) -> SignedManifest:
    """Parse ``manifest.json`` and check its signature; raise ``ManifestInvalid`` otherwise."""
    signed = parse_signed_manifest(document)
    check_signature(signed, expected_signer_ss58)
    return signed

"""Decode and encode single GRIB2 fields with ecCodes (NCEP keys, regular lat/lon).

Decoding works on one message's bytes (what a byte-range fetch returns); a message that
packs several fields (old GFS: U and V in one message) is split with ecCodes' multi-field
support. Values come back as float32 (latitude, longitude) with longitudes 0..360.
"""

from __future__ import annotations

import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import eccodes as ec
import numpy as np

from gaia.tasks.defined_tasks.weather.data.gfs_idx import FieldKey, GribCode, grib_code
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY, field_keys

_MULTI_LOCK = threading.Lock()  # ecCodes' multi-field switch is process-global
T = TypeVar("T")


class GfsDecodeError(ValueError):
    """Bytes that should hold a GRIB2 message do not decode to the expected field."""


@dataclass(frozen=True)
class DecodedField:
    """One field on its grid; ``values`` are canonical (z already in m2 s-2)."""

    key: FieldKey
    values: np.ndarray  # float32, (latitude, longitude)
    grid: Grid
    ref_time: datetime
    lead_hours: int

    @property
    def valid_time(self) -> datetime:
        return self.ref_time + timedelta(hours=self.lead_hours)


def check_message_bytes(data: bytes, what: str) -> None:
    """Raise ``GfsDecodeError`` unless ``data`` is exactly one complete GRIB2 message."""
    if len(data) < 16 or data[:4] != b"GRIB":
        raise GfsDecodeError(f"{what}: does not start with a GRIB header ({len(data)} bytes)")
    edition = data[7]
    if edition != 2:
        raise GfsDecodeError(f"{what}: GRIB edition {edition}, expected 2")
    declared = struct.unpack(">Q", data[8:16])[0]
    if declared != len(data) or data[-4:] != b"7777":
        raise GfsDecodeError(
            f"{what}: truncated or padded message ({len(data)} bytes, header says {declared})"
        )


def _code_params(code: GribCode) -> tuple[int, int, int, int, int]:
    return (code.discipline, code.category, code.number, code.surface_type, code.surface_value)


_BY_PARAMS: dict[tuple[int, int, int, int, int], FieldKey] = {
    _code_params(grib_code(key)): key for key in field_keys()
}


def _surface_value(handle: int) -> int:
    if ec.codes_is_missing(handle, "scaledValueOfFirstFixedSurface"):
        return 0
    scaled = ec.codes_get_long(handle, "scaledValueOfFirstFixedSurface")
    factor = ec.codes_get_long(handle, "scaleFactorOfFirstFixedSurface")
    if ec.codes_is_missing(handle, "scaleFactorOfFirstFixedSurface"):
        factor = 0
    return round(scaled / 10 ** (factor or 0))


def _params(handle: int) -> tuple[int, int, int, int, int]:
    return (
        ec.codes_get_long(handle, "discipline"),
        ec.codes_get_long(handle, "parameterCategory"),
        ec.codes_get_long(handle, "parameterNumber"),
        ec.codes_get_long(handle, "typeOfFirstFixedSurface"),
        _surface_value(handle),
    )


def field_key_of(handle: int) -> FieldKey | None:
    """The canonical field a GRIB2 handle holds, or None if it is not one of ours."""
    return _BY_PARAMS.get(_params(handle))


def _grid_of(handle: int) -> tuple[Grid, np.ndarray]:
    """The handle's grid and the column order that makes longitudes ascend in [0, 360)."""
    if ec.codes_get(handle, "gridType") != "regular_ll":
        raise GfsDecodeError(f"unsupported grid type {ec.codes_get(handle, 'gridType')!r}")
    ni, nj = ec.codes_get(handle, "Ni"), ec.codes_get(handle, "Nj")
    lat0 = ec.codes_get(handle, "latitudeOfFirstGridPointInDegrees")
    lat1 = ec.codes_get(handle, "latitudeOfLastGridPointInDegrees")
    lon0 = ec.codes_get(handle, "longitudeOfFirstGridPointInDegrees")
    di = ec.codes_get(handle, "iDirectionIncrementInDegrees")
    if ec.codes_get(handle, "iScansNegatively"):
        di = -di
    lon = np.round(np.mod(lon0 + di * np.arange(ni), 360.0), 9)
    order = np.argsort(lon, kind="stable")
    grid = Grid(latitudes=tuple(np.linspace(lat0, lat1, nj)), longitudes=tuple(lon[order]))
    return grid, order


def _ref_time(handle: int) -> datetime:
    date, hhmm = ec.codes_get(handle, "dataDate"), ec.codes_get(handle, "dataTime")
    return datetime.strptime(f"{date:08d}{hhmm:04d}", "%Y%m%d%H%M").replace(tzinfo=UTC)


def _lead_hours(handle: int) -> int:
    ec.codes_set(handle, "stepUnits", 1)
    return int(ec.codes_get(handle, "endStep"))


def _read_values(handle: int, what: str) -> tuple[Grid, np.ndarray]:
    """The handle's grid and float32 (latitude, longitude) values, missing points NaN."""
    grid, order = _grid_of(handle)
    values = ec.codes_get_values(handle).astype(np.float32)
    if values.size != grid.shape[0] * grid.shape[1]:
        raise GfsDecodeError(f"{what}: {values.size} values for a {grid.shape} grid")
    if ec.codes_get(handle, "bitmapPresent"):
        values[values == ec.codes_get(handle, "missingValue")] = np.nan
    return grid, values.reshape(grid.shape)[:, order]


def decode_handle(handle: int, key: FieldKey) -> DecodedField:
    """Read one field's values and metadata from an ecCodes handle."""
    grid, field = _read_values(handle, str(key))
    if key[0] == "z":
        field = field * np.float32(STANDARD_GRAVITY)
    return DecodedField(key, field, grid, _ref_time(handle), _lead_hours(handle))


def _iter_multi(data: bytes) -> Iterator[int]:
    """Every field handle in a message, splitting multi-field messages (old GFS U/V)."""
    with tempfile.NamedTemporaryFile(suffix=".grib2") as tmp:
        tmp.write(data)
        tmp.flush()
        with _MULTI_LOCK, open(tmp.name, "rb") as stream:
            ec.codes_grib_multi_support_on()
            try:
                while (handle := ec.codes_grib_new_from_file(stream)) is not None:
                    yield handle
            finally:
                ec.codes_grib_multi_support_reset_file(stream)
                ec.codes_grib_multi_support_off()


def _decode_matching(
    data: bytes, label: str, wanted: str, matches: Callable[[int], bool],
    read: Callable[[int], T],
) -> T:
    """``read`` of the first field in one message's bytes that ``matches``."""
    check_message_bytes(data, label)
    try:
        handle = ec.codes_new_from_message(data)
    except ec.CodesInternalError as exc:
        raise GfsDecodeError(f"{label}: ecCodes cannot read the message: {exc}") from exc
    try:
        if matches(handle):
            return read(handle)
    finally:
        ec.codes_release(handle)
    for sub in _iter_multi(data):
        try:
            if matches(sub):
                return read(sub)
        finally:
            ec.codes_release(sub)
    raise GfsDecodeError(f"{label}: message does not hold the field {wanted}")


def decode_message(data: bytes, key: FieldKey, what: str = "") -> DecodedField:
    """Decode the field ``key`` from one GRIB2 message's bytes.

    Raises ``GfsDecodeError`` if the bytes are not one complete message or do not hold
    the field (the message names ``what``, e.g. the URL and inventory line).
    """
    return _decode_matching(data, what or f"{key}", f"{key}",
                            lambda h: field_key_of(h) == key, lambda h: decode_handle(h, key))


def decode_code(data: bytes, code: GribCode, what: str = "") -> tuple[Grid, np.ndarray]:
    """The grid and values (GRIB units, no conversion) of the message holding ``code``.

    For NCEP parameters that are not canonical fields (e.g. the static ``LAND:surface``);
    errors as ``decode_message``.
    """
    wanted = f":{code.var}:{code.level}:"
    params = _code_params(code)
    return _decode_matching(data, what or wanted, wanted, lambda h: _params(h) == params,
                            lambda h: _read_values(h, wanted))


def decode_file(path: Path) -> list[DecodedField]:
    """Every canonical field in a GRIB2 file (other parameters are skipped)."""
    fields: list[DecodedField] = []
    with _MULTI_LOCK, open(path, "rb") as stream:
        ec.codes_grib_multi_support_on()
        try:
            while (handle := ec.codes_grib_new_from_file(stream)) is not None:
                try:
                    key = field_key_of(handle) if ec.codes_get_long(handle, "edition") == 2 else None
                    if key is not None:
                        fields.append(decode_handle(handle, key))
                finally:
                    ec.codes_release(handle)
        finally:
            ec.codes_grib_multi_support_reset_file(stream)
            ec.codes_grib_multi_support_off()
    return fields


class GribEncoder:
    """Writes canonical fields as NCEP-style GRIB2 messages on one grid.

    One handle per parameter is built once and reused for every message, so writing many
    fields is cheap. Not thread-safe. ``packing`` is an ecCodes packingType (GFS uses
    ``grid_complex_spatial_differencing``).
    """

    def __init__(self, grid: Grid, packing: str = "grid_simple", bits_per_value: int = 16):
        self._grid = grid
        self._packing = packing
        self._bits = bits_per_value
        self._templates: dict[GribCode, int] = {}

    def close(self) -> None:
        for handle in self._templates.values():
            ec.codes_release(handle)
        self._templates.clear()

    def _set_grid(self, handle: int) -> None:
        grid = self._grid
        n_lat, n_lon = grid.shape
        ec.codes_set(handle, "gridType", "regular_ll")
        ec.codes_set(handle, "Ni", n_lon)
        ec.codes_set(handle, "Nj", n_lat)
        ec.codes_set(handle, "latitudeOfFirstGridPointInDegrees", grid.latitudes[0])
        ec.codes_set(handle, "latitudeOfLastGridPointInDegrees", grid.latitudes[-1])
        ec.codes_set(handle, "longitudeOfFirstGridPointInDegrees", grid.longitudes[0])
        ec.codes_set(handle, "longitudeOfLastGridPointInDegrees", grid.longitudes[-1])
        ec.codes_set(handle, "iDirectionIncrementInDegrees", grid.resolution_deg)
        ec.codes_set(handle, "jDirectionIncrementInDegrees", abs(grid.lat[1] - grid.lat[0]))
        ec.codes_set(handle, "jScansPositively", 0 if grid.descending else 1)

    def _template(self, code: GribCode) -> int:
        if code in self._templates:
            return self._templates[code]
        handle = ec.codes_grib_new_from_samples("GRIB2")
        ec.codes_set(handle, "centre", "kwbc")
        ec.codes_set(handle, "typeOfProcessedData", 1)
        self._set_grid(handle)
        ec.codes_set(handle, "productDefinitionTemplateNumber", 0)
        for name, value in (("discipline", code.discipline),
                            ("parameterCategory", code.category),
                            ("parameterNumber", code.number),
                            ("typeOfFirstFixedSurface", code.surface_type),
                            ("scaleFactorOfFirstFixedSurface", 0),
                            ("scaledValueOfFirstFixedSurface", code.surface_value)):
            ec.codes_set(handle, name, value)
        ec.codes_set(handle, "stepUnits", 1)
        ec.codes_set(handle, "packingType", self._packing)
        ec.codes_set(handle, "bitsPerValue", self._bits)
        self._templates[code] = handle
        return handle

    def encode(self, key: FieldKey, values: np.ndarray, ref_time: datetime, lead: int) -> bytes:
        """One GRIB2 message; ``values`` canonical (z in m2 s-2, written as HGT gpm)."""
        data = np.asarray(values, dtype=np.float64)
        if key[0] == "z":
            data = data / STANDARD_GRAVITY
        return self.encode_code(grib_code(key), data, ref_time, lead)

    def encode_code(
        self, code: GribCode, values: np.ndarray, ref_time: datetime, lead: int
    ) -> bytes:
        """One GRIB2 message of any NCEP parameter, ``values`` in GRIB units."""
        data = np.asarray(values, dtype=np.float64)
        if data.shape != self._grid.shape:
            raise ValueError(f"{code.var}:{code.level}: values {data.shape} do not fit "
                             f"grid {self._grid.shape}")
        handle = self._template(code)  # reused: every per-message key is set each time
        ec.codes_set(handle, "dataDate", int(ref_time.strftime("%Y%m%d")))
        ec.codes_set(handle, "dataTime", ref_time.hour * 100)
        ec.codes_set(handle, "typeOfProcessedData", 0 if lead == 0 else 1)
        ec.codes_set(handle, "forecastTime", lead)
        ec.codes_set_values(handle, data.ravel())
        return bytes(ec.codes_get_message(handle))

"""Protocol v2 forecast codec: what bit rounding saves and what it costs the scores.

For each canonical variable and each candidate ``keepbits`` (8..18) this measures, on
real GFS fields made forecast-like:

- the compressed size of one field under BitRound(keepbits) + Blosc bit-shuffle (lz4
  clevel 5, zstd clevel 1 and 3), against protocol v1's codec (Blosc lz4 clevel 5, byte
  shuffle, lossless) on the same unrounded field;
- the change in ACC and in RMSE of the forecast against the truth when the forecast is
  bit-rounded (``scoring.metrics``), worst over the variable's levels and over two
  climatology proxies (the truth's zonal mean; the truth smoothed at ~1500 km);
- encode time (BitRound + Blosc) and decode time (Blosc into a preallocated buffer + the
  validator's precision check) per 0.25° field.

Then the whole store of one lead (69 fields) under the protocol's table
(``forecast_codec.KEEPBITS``) against v1: the per-miner saving in bytes.

Data: the real GFS GRIB2 samples in ``--grib-dir`` (the project's ``decode_file``).
0.25° fields exist for 2t and z500 only; the other fields come from the finest real
sample that has them (1.0°: 10u, 10v and z/t/u/v/q at 850 hPa; 2.5°: msl and the other
levels), upsampled to 0.25° by cubic (Catmull-Rom) interpolation. q is not in the
samples: it is derived from the real relative humidity and temperature (Bolton's
saturation pressure). Upsampled fields are smoother than native ones, which helps every
codec; the size check at the end coarsens the two native 0.25° fields to 1.0° and 2.5°
and upsamples them back to show how far that moves the v2/v1 ratio.

Forecast-like: forecast = truth + a smooth random error field (Gaussian spectrum,
correlation length ~300 km, fixed seed) with day-1 error sizes (smaller errors make the
rounding's share larger, so this is the strict case): 2t 1 K, winds 1.2-1.5 m/s, msl
100 Pa, t 0.6 K, z 100 m2 s-2; q a 10 % multiplicative error.

Run: .venv/bin/python benchmarks/forecast_codec.py --grib-dir DIR [--table-only]
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import eccodes as ec
import numpy as np
import xarray as xr
from numcodecs import BitRound, Blosc

from gaia.tasks.defined_tasks.weather.data.grib import decode_file
from gaia.tasks.defined_tasks.weather.forecast_codec import KEEPBITS, decode_field, encode_field
from gaia.tasks.defined_tasks.weather.scoring.metrics import acc, rmse
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES, field_keys

FILES = {
    "0.25": ("narduk_gfs_sample_TMP2m_0p25_20251201_00z_f000.grib2", "grib2io_gfs.complex.grib2"),
    "1.0": ("hamosapience_gfs.t00z.pgrb2.1p00.f000_UGRD-VGRD-10m_20150419.grib2",
            "availabs_gfs.t00z.pgrb2.1p00.f000_850mb_20150915.grib2"),
    "2.5": ("pygrib_gfs.t12z.pgrbf120.2p5deg.grib2",),
}
TARGET_SHAPE = (721, 1440)
KEEPBITS_CANDIDATES = range(8, 19)
V1 = Blosc(cname="lz4", clevel=5, shuffle=Blosc.SHUFFLE)
CANDIDATE_CODECS = {
    "lz4-5": Blosc(cname="lz4", clevel=5, shuffle=Blosc.BITSHUFFLE),
    "zstd-1": Blosc(cname="zstd", clevel=1, shuffle=Blosc.BITSHUFFLE),
    "zstd-3": Blosc(cname="zstd", clevel=3, shuffle=Blosc.BITSHUFFLE),
}
ERROR_STD = {"2t": 1.0, "10u": 1.2, "10v": 1.2, "msl": 100.0, "t": 0.6, "u": 1.5, "v": 1.5,
             "z": 100.0}
Q_RELATIVE_ERROR = 0.10
CORRELATION_KM = 300.0
CLIMATOLOGY_SMOOTHING_KM = 1500.0
EARTH_KM_PER_DEG = 111.2

FieldKey = tuple[str, int | None]


@dataclass(frozen=True)
class Field:
    key: FieldKey
    truth: np.ndarray  # float32 (721, 1440)
    resolution: str  # the real sample's grid it came from


# --- real fields on the 0.25° grid ---------------------------------------------------


def _catmull_rom(values: np.ndarray, positions: np.ndarray, axis: int, periodic: bool) -> np.ndarray:
    """Cubic interpolation of ``values`` along ``axis`` at fractional source indices."""
    n = values.shape[axis]
    base = np.floor(positions).astype(int)
    t = positions - base
    weights = (
        ((-t + 2) * t - 1) * t / 2,
        ((3 * t - 5) * t * t + 2) / 2,
        ((-3 * t + 4) * t + 1) * t / 2,
        (t - 1) * t * t / 2,
    )
    out = 0.0
    for offset, weight in zip(range(-1, 3), weights, strict=True):
        index = base + offset
        index = np.mod(index, n) if periodic else np.clip(index, 0, n - 1)
        shape = [1] * values.ndim
        shape[axis] = -1
        out = out + np.take(values, index, axis=axis) * weight.reshape(shape)
    return np.asarray(out)


def upsample(values: np.ndarray, shape: tuple[int, int] = TARGET_SHAPE) -> np.ndarray:
    """A global 90..-90 x 0..360 field on the 0.25° grid (longitude periodic)."""
    if values.shape == shape:
        return values.astype(np.float32)
    lat = np.linspace(0, values.shape[0] - 1, shape[0])
    lon = np.arange(shape[1]) * values.shape[1] / shape[1]
    rows = _catmull_rom(values.astype(np.float64), lat, axis=0, periodic=False)
    return _catmull_rom(rows, lon, axis=1, periodic=True).astype(np.float32)


def _relative_humidity(path: Path) -> dict[int, np.ndarray]:
    """RH (%) on pressure levels: not a canonical field, so read with ecCodes directly."""
    fields: dict[int, np.ndarray] = {}
    with open(path, "rb") as stream:
        while (handle := ec.codes_grib_new_from_file(stream)) is not None:
            try:
                if ec.codes_get(handle, "shortName") == "r" and ec.codes_get(
                    handle, "typeOfLevel"
                ) == "isobaricInhPa":
                    shape = (ec.codes_get(handle, "Nj"), ec.codes_get(handle, "Ni"))
                    fields[int(ec.codes_get(handle, "level"))] = ec.codes_get_values(handle).reshape(shape)
            finally:
                ec.codes_release(handle)
    return fields


def specific_humidity(rh_percent: np.ndarray, t_kelvin: np.ndarray, level_hpa: int) -> np.ndarray:
    """q from RH and T (Bolton 1980 saturation vapour pressure over water)."""
    celsius = t_kelvin - 273.15
    saturation = 611.2 * np.exp(17.67 * celsius / (celsius + 243.5))
    vapour = np.clip(rh_percent, 0, 100) / 100 * saturation
    pressure = level_hpa * 100.0
    return (0.622 * vapour / (pressure - 0.378 * vapour)).astype(np.float32)


def real_fields(grib_dir: Path) -> dict[FieldKey, Field]:
    """Every protocol field from the finest real sample that has it."""
    fields: dict[FieldKey, Field] = {}
    for resolution, names in FILES.items():  # finest first: keep the first seen
        for name in names:
            path = grib_dir / name
            decoded = {f.key: f.values for f in decode_file(path)}
            for key, values in decoded.items():
                fields.setdefault(key, Field(key, upsample(values), resolution))
            for level, rh in _relative_humidity(path).items():
                if ("t", level) in decoded and ("q", level) in field_keys():
                    q = specific_humidity(rh, decoded[("t", level)], level)
                    fields.setdefault(("q", level), Field(("q", level), upsample(q), resolution))
    missing = [key for key in field_keys() if key not in fields]
    if missing:
        raise SystemExit(f"no real sample holds {missing}")
    return {key: fields[key] for key in field_keys()}


# --- forecast-like ---------------------------------------------------------------------


def smooth_noise(shape: tuple[int, int], length_km: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance Gaussian random field with a Gaussian spectrum of ``length_km``."""
    grid_km = 180.0 / (shape[0] - 1) * EARTH_KM_PER_DEG
    sigma = length_km / grid_km
    white = rng.standard_normal(shape)
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    field = np.fft.irfft2(np.fft.rfft2(white) * kernel, s=shape)
    return field / field.std()


def smooth(values: np.ndarray, length_km: float) -> np.ndarray:
    """``values`` low-passed at ``length_km`` (the climatology proxy)."""
    shape = values.shape
    grid_km = 180.0 / (shape[0] - 1) * EARTH_KM_PER_DEG
    sigma = length_km / grid_km
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    kernel = np.exp(-2 * (np.pi * sigma) ** 2 * (kx**2 + ky**2))
    return np.fft.irfft2(np.fft.rfft2(values.astype(np.float64)) * kernel, s=shape)


def forecast_of(field: Field, rng: np.random.Generator) -> np.ndarray:
    noise = smooth_noise(field.truth.shape, CORRELATION_KM, rng)
    variable = field.key[0]
    if variable == "q":
        return (field.truth * np.exp(Q_RELATIVE_ERROR * noise)).astype(np.float32)
    return (field.truth + ERROR_STD[variable] * noise).astype(np.float32)


# --- measurements ----------------------------------------------------------------------


def _grid_array(values: np.ndarray) -> xr.DataArray:
    lat = np.linspace(90, -90, values.shape[0])
    lon = np.arange(values.shape[1]) * 360.0 / values.shape[1]
    return xr.DataArray(values, dims=("latitude", "longitude"),
                        coords={"latitude": lat, "longitude": lon})


@dataclass
class Scores:
    truth: xr.DataArray
    climatologies: tuple[xr.DataArray, ...]

    @classmethod
    def of(cls, truth: np.ndarray) -> Scores:
        zonal = np.broadcast_to(truth.mean(axis=1, dtype=np.float64)[:, None], truth.shape)
        return cls(_grid_array(truth), (_grid_array(zonal), _grid_array(smooth(truth, CLIMATOLOGY_SMOOTHING_KM))))

    def rmse(self, forecast: np.ndarray) -> float:
        return float(rmse(_grid_array(forecast), self.truth))

    def accs(self, forecast: np.ndarray) -> list[float]:
        f = _grid_array(forecast)
        return [float(acc(f, self.truth, clim)) for clim in self.climatologies]


@dataclass
class Effect:
    """Worst effect of rounding over a variable's fields."""

    acc_change: float = 0.0
    rmse_change_percent: float = 0.0

    def add(self, acc_change: float, rmse_change_percent: float) -> None:
        self.acc_change = max(self.acc_change, acc_change)
        self.rmse_change_percent = max(self.rmse_change_percent, rmse_change_percent)


def rounded(values: np.ndarray, keepbits: int) -> np.ndarray:
    return np.asarray(BitRound(keepbits).encode(values.copy())).view(np.float32).reshape(values.shape)


def effect_of_rounding(scores: Scores, forecast: np.ndarray, keepbits: int) -> tuple[float, float]:
    base_rmse, base_accs = scores.rmse(forecast), scores.accs(forecast)
    field = rounded(forecast, keepbits)
    acc_change = max(abs(a - b) for a, b in zip(scores.accs(field), base_accs, strict=True))
    return acc_change, 100 * abs(scores.rmse(field) - base_rmse) / base_rmse


def best_time(run: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def codec_times(forecast: np.ndarray, keepbits: int, codec: Blosc) -> tuple[float, float]:
    """(encode, decode + precision check) seconds for one field."""
    encoded = codec.encode(rounded(forecast, keepbits))
    out = np.empty(forecast.shape, dtype="<f4")
    mask = np.uint32((1 << (23 - keepbits)) - 1)

    def decode() -> None:
        codec.decode(encoded, out=out)
        if np.bitwise_and(out.view(np.uint32), mask).any():
            raise AssertionError("rounded field fails the precision check")

    return best_time(lambda: codec.encode(rounded(forecast, keepbits))), best_time(decode)


@dataclass
class VariableRow:
    v1_bytes: int = 0
    v2_bytes: dict[tuple[str, int], int] | None = None
    effects: dict[int, Effect] | None = None
    times: dict[tuple[str, int], tuple[float, float]] | None = None
    v1_times: tuple[float, float] = (0.0, 0.0)


def forecasts(fields: dict[FieldKey, Field]) -> Iterator[tuple[Field, np.ndarray]]:
    rng = np.random.default_rng(20261128)
    for field in fields.values():
        yield field, forecast_of(field, rng)


def measure(fields: dict[FieldKey, Field]) -> dict[str, VariableRow]:
    rows = {name: VariableRow(0, {}, {k: Effect() for k in KEEPBITS_CANDIDATES}, {}) for name in ALL_VARIABLES}
    for field, forecast in forecasts(fields):
        row = rows[field.key[0]]
        scores = Scores.of(field.truth)
        row.v1_bytes += len(V1.encode(forecast))
        first_of_variable = not row.times
        if first_of_variable:
            out = np.empty(forecast.shape, dtype="<f4")
            encoded = V1.encode(forecast)
            row.v1_times = (best_time(lambda f=forecast: V1.encode(f)),
                            best_time(lambda e=encoded, o=out: V1.decode(e, out=o)))
        for keepbits in KEEPBITS_CANDIDATES:
            row.effects[keepbits].add(*effect_of_rounding(scores, forecast, keepbits))
            field_rounded = rounded(forecast, keepbits)
            for cname, codec in CANDIDATE_CODECS.items():
                size = len(codec.encode(field_rounded))
                row.v2_bytes[cname, keepbits] = row.v2_bytes.get((cname, keepbits), 0) + size
                if first_of_variable:
                    row.times[cname, keepbits] = codec_times(forecast, keepbits, codec)
        print(f"  measured {field.key} ({field.resolution}°)", file=sys.stderr, flush=True)
    return rows


def print_variable_tables(rows: dict[str, VariableRow]) -> None:
    codecs = " / ".join(CANDIDATE_CODECS)
    print("\nPer variable: size v2/v1 summed over its levels; effect = worst level;"
          f" encode and decode ms per field; codecs {codecs} (Blosc bit-shuffle)")
    print(f"{'var':>4} {'k':>3} | {'size v2/v1':^20} | {'ΔACC':>8} {'ΔRMSE %':>9} |"
          f" {'encode ms':^16} | {'decode ms':^16}")
    for name, row in rows.items():
        v1_enc, v1_dec = row.v1_times
        print(f"{name:>4}  v1 | {row.v1_bytes / 1e6:7.2f} MB (v1 codec)   |{'':>19}|"
              f" {1e3 * v1_enc:16.1f} | {1e3 * v1_dec:16.1f}")
        for k in KEEPBITS_CANDIDATES:
            sizes = " ".join(f"{row.v2_bytes[c, k] / row.v1_bytes:6.3f}" for c in CANDIDATE_CODECS)
            encode = " ".join(f"{1e3 * row.times[c, k][0]:5.1f}" for c in CANDIDATE_CODECS)
            decode = " ".join(f"{1e3 * row.times[c, k][1]:5.1f}" for c in CANDIDATE_CODECS)
            effect = row.effects[k]
            marker = " <- protocol" if KEEPBITS[name] == k else ""
            print(f"{name:>4} {k:>3} | {sizes} | {effect.acc_change:8.1e}"
                  f" {effect.rmse_change_percent:9.5f} | {encode} | {decode}{marker}")


def print_store(fields: dict[FieldKey, Field]) -> None:
    """The protocol's own writer path (encode_field) for every field of one lead."""
    v1 = v2 = 0
    for field, forecast in forecasts(fields):
        v1 += len(V1.encode(forecast))
        data = encode_field(field.key[0], forecast)
        v2 += len(data)
        decode_field("bench", data, field.key[0], forecast.shape)
    raw = len(fields) * math.prod(TARGET_SHAPE) * 4
    print(f"\nOne lead, 69 fields at 0.25°, protocol table {dict(KEEPBITS)}:")
    print(f"  raw {raw / 1e6:.0f} MB; v1 {v1 / 1e6:.1f} MB ({raw / v1:.2f}x); v2 {v2 / 1e6:.1f} MB"
          f" ({raw / v2:.2f}x); v2 is {100 * (1 - v2 / v1):.1f} % below v1 (x40 leads:"
          f" v1 {40 * v1 / 2**30:.2f} GiB, v2 {40 * v2 / 2**30:.2f} GiB)")


def print_upsampling_check(fields: dict[FieldKey, Field]) -> None:
    """How much smoother upsampled samples flatter the v2/v1 ratio (native 0.25° fields)."""
    print("\nUpsampling check: v2/v1 size ratio (protocol table) of a native 0.25° field vs the"
          " same field coarsened and upsampled back")
    rng = np.random.default_rng(7)
    for key in (("2t", None), ("z", 500)):
        native = fields[key]
        ratios = []
        for step in (1, 4, 10):
            truth = upsample(native.truth[::step, ::step]) if step > 1 else native.truth
            forecast = forecast_of(Field(key, truth, native.resolution), rng)
            ratios.append(len(encode_field(key[0], forecast)) / len(V1.encode(forecast)))
        print(f"  {key}: native {ratios[0]:.3f}, via 1.0° {ratios[1]:.3f}, via 2.5° {ratios[2]:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grib-dir", type=Path, required=True)
    args = parser.parse_args()
    fields = real_fields(args.grib_dir)
    sources = {}
    for field in fields.values():
        sources.setdefault(field.resolution, []).append(field.key)
    for resolution, keys in sources.items():
        print(f"{resolution}° sample: {len(keys)} fields")
    print_variable_tables(measure(fields))
    print_store(fields)
    print_upsampling_check(fields)
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM"))
    print(f"\npeak RSS: {peak.split(':')[1].strip()}")


if __name__ == "__main__":
    main()

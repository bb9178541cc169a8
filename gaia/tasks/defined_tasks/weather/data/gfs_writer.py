"""Write GFS-layout GRIB2 files with wgrib2-style ``.idx`` inventories beside them.

Message order follows the real pgrb2 files: PRMSL first, then per pressure level (top
down) HGT, TMP, RH, SPFH, UGRD, VGRD, then the 2 m and 10 m fields. RH is written although
the project does not use it, so a reader must really select by inventory (and byte ranges
have gaps, as in the real files).

Files given statics (the archive's f000) also carry the three static messages where the
real f000 has them, each beside messages nobody reads: PRES:surface and HGT:surface
before the 2 m fields, then after the 10 m winds SOTYP:surface, TMP:100 m above ground,
LAND:surface and ICEC:surface.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import numpy as np

from gaia.tasks.defined_tasks.weather.data.gfs import gfs_file_path
from gaia.tasks.defined_tasks.weather.data.gfs_idx import GribCode, format_idx_line, grib_code
from gaia.tasks.defined_tasks.weather.data.gfs_statics import STATIC_CODES
from gaia.tasks.defined_tasks.weather.data.grib import GribEncoder
from gaia.tasks.defined_tasks.weather.data.synthetic import StaticFields
from gaia.tasks.defined_tasks.weather.variables import PRESSURE_LEVELS_HPA, STANDARD_GRAVITY

_LEVEL_ORDER = ("z", "t", "rh", "q", "u", "v")
_PRES_SURFACE = GribCode("PRES", "surface", 0, 3, 0, 1, 0)
_TMP_100M = GribCode("TMP", "100 m above ground", 0, 0, 0, 103, 100)
_ICEC = GribCode("ICEC", "surface", 10, 2, 0, 1, 0)
SEAWATER_FREEZING_K = 271.35


def _rh_code(level: int | None) -> GribCode:
    if level is None:
        return GribCode("RH", "2 m above ground", 0, 1, 1, 103, 2)
    return GribCode("RH", f"{level} mb", 0, 1, 1, 100, level * 100)


def relative_humidity(q: np.ndarray, t: np.ndarray, p_hpa: np.ndarray | float) -> np.ndarray:
    """Relative humidity (%) from specific humidity, temperature (K) and pressure (hPa)."""
    es = 611.2 * np.exp(17.67 * (t - 273.15) / (t - 29.65))
    qs = 0.622 * es / (np.asarray(p_hpa) * 100.0)
    return np.clip(100.0 * q / qs, 0.0, 100.0)


def _messages(
    fields: Mapping[str, np.ndarray], statics: StaticFields | None
) -> list[tuple[GribCode, np.ndarray]]:
    """(code, values in GRIB units) in GFS file order."""
    out: list[tuple[GribCode, np.ndarray]] = [(grib_code(("msl", None)), fields["msl"])]
    for k, level in enumerate(PRESSURE_LEVELS_HPA):
        for name in _LEVEL_ORDER:
            if name == "rh":
                rh = relative_humidity(fields["q"][k], fields["t"][k], level)
                out.append((_rh_code(level), rh))
            elif name == "z":
                out.append((grib_code(("z", level)), fields["z"][k] / STANDARD_GRAVITY))
            else:
                out.append((grib_code((name, level)), fields[name][k]))
    rh2 = relative_humidity(fields["q"][-1], fields["2t"], 1000.0)
    near_surface = [(grib_code(("2t", None)), fields["2t"]), (_rh_code(None), rh2),
                    (grib_code(("10u", None)), fields["10u"]),
                    (grib_code(("10v", None)), fields["10v"])]
    if statics is None:
        return out + near_surface
    return out + _static_messages(fields, statics, near_surface)


def _static_messages(
    fields: Mapping[str, np.ndarray], statics: StaticFields,
    near_surface: list[tuple[GribCode, np.ndarray]],
) -> list[tuple[GribCode, np.ndarray]]:
    """The near-surface messages with the statics and their neighbours around them."""
    pressure = fields["msl"] * np.exp(-statics.orography_m / 8000.0)
    ice = np.where((statics.land < 0.5) & (fields["2t"] < SEAWATER_FREEZING_K), 1.0, 0.0)
    return [(_PRES_SURFACE, pressure), (STATIC_CODES["z"], statics.orography_m),
            *near_surface,
            (STATIC_CODES["slt"], statics.soil_class), (_TMP_100M, fields["2t"] - 0.65),
            (STATIC_CODES["lsm"], statics.land), (_ICEC, ice)]


def write_gfs_file(
    base_dir: Path, encoder: GribEncoder, cycle: datetime, lead: int,
    fields: Mapping[str, np.ndarray], statics: StaticFields | None = None,
) -> Path:
    """Write one GRIB2 file and its ``.idx`` under ``base_dir`` in NOAA's layout.

    ``fields`` are canonical arrays (surface (lat, lon), levels (13, lat, lon));
    ``statics``, when given, are written too (GFS puts them in every file).
    Returns the GRIB2 path; both files appear atomically.
    """
    path = base_dir / gfs_file_path(cycle, lead)
    path.parent.mkdir(parents=True, exist_ok=True)
    ref = f"{cycle:%Y%m%d%H}"
    chunks: list[bytes] = []
    lines: list[str] = []
    offset = 0
    for number, (code, values) in enumerate(_messages(fields, statics), start=1):
        message = encoder.encode_code(code, values, cycle, lead)
        lines.append(format_idx_line(number, offset, ref, code, lead))
        chunks.append(message)
        offset += len(message)
    _atomic_write(path, b"".join(chunks))
    _atomic_write(path.with_name(path.name + ".idx"), ("\n".join(lines) + "\n").encode())
    return path


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(data)
    os.replace(tmp, path)

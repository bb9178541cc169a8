"""Static fields from a GFS f000 file: land-sea mask, surface geopotential, soil type.

Models such as Aurora take three constant fields beside the forecast fields, named and
coded as in ERA5: ``lsm`` (land fraction 0..1), ``z`` (surface geopotential, m2 s-2) and
``slt`` (ERA5 soil type). Every GFS pgrb2.0p25 file carries them (f000: messages 562
``HGT:surface``, 597 ``SOTYP:surface``, 682 ``LAND:surface``, in that order):

=========  ==============  ============================  =============================
ours       GFS idx         GRIB2 (discipline/cat/num,    ecCodes shortName / name
                           surface type 1)
=========  ==============  ============================  =============================
``lsm``    LAND:surface    2 / 0 / 0                     lsm / Land-sea mask
``z``      HGT:surface     0 / 3 / 5                     orog / Orography (gpm)
``slt``    SOTYP:surface   2 / 3 / 0                     slt / Soil type
=========  ==============  ============================  =============================

Conversions: LAND is land cover 1 = land, 0 = sea, kept as float32 (values outside 0..1
are refused); HGT:surface is in geopotential metres and becomes geopotential
(x ``STANDARD_GRAVITY``); neither may have missing points. SOTYP holds NOAA's STATSGO
texture classes, mapped to ERA5's classes by ``GFS_TO_ERA5_SOIL`` (missing points: 0).

GFS soil classes (STATSGO; GFS v16 uses classes 1-16, the 19-class table adds 17-19; GFS
writes 0 at sea points) and the ERA5 class each becomes:

=====  =====================  =====  ==============================================
GFS    STATSGO class           ERA5   why
=====  =====================  =====  ==============================================
0      none (sea point)        0      no soil
1      sand                    1      coarse (clay < 18 %, sand > 65 %)
2      loamy sand              1      coarse
3      sandy loam              2      medium (typical sand 65 %, at the boundary)
4      silt loam               2      medium (clay ~20 %, sand > 15 %)
5      silt                    3      medium fine (clay < 35 %, sand < 15 %)
6      loam                    2      medium
7      sandy clay loam         2      medium
8      silty clay loam         3      medium fine
9      clay loam               2      medium
10     sandy clay              4      fine (clay 35-60 %)
11     silty clay              4      fine
12     clay                    4      fine (typical clay ~60 %, not very fine)
13     organic material        6      organic
14     water                   0      no soil
15     bedrock                 1      coarse (no ERA5 class; shallow, little storage)
16     other (land ice)        2      medium (no ERA5 class; IFS's old uniform loam)
17     playa                   4      fine (salt-crusted silts and clays)
18     lava                    1      coarse
19     white sand              1      coarse
=====  =====================  =====  ==============================================

ERA5 codes: 0 no soil / water, 1 coarse, 2 medium, 3 medium fine, 4 fine, 5 very fine,
6 organic, 7 tropical organic. The mapping is approximate: USDA texture classes are
folded into the FAO texture classes by their typical sand/clay fractions, so a class
straddling an FAO boundary lands on one side; ERA5's 5 (very fine) and 7 (tropical
organic) are never produced, and GFS's land mask and soil map need not agree with ERA5's
at coasts. A model trained on ERA5 statics sees slightly different statics from GFS.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.canonical import grid_coords
from gaia.tasks.defined_tasks.weather.data.gfs_idx import FieldKey, GribCode
from gaia.tasks.defined_tasks.weather.data.grib import GfsDecodeError, decode_code
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY

STATIC_VARIABLES: Final[tuple[str, ...]] = ("lsm", "z", "slt")
STATIC_CODES: Final[dict[str, GribCode]] = {  # in the files' message order
    "z": GribCode("HGT", "surface", 0, 3, 5, 1, 0),
    "slt": GribCode("SOTYP", "surface", 2, 3, 0, 1, 0),
    "lsm": GribCode("LAND", "surface", 2, 0, 0, 1, 0),
}
STATIC_UNITS: Final[dict[str, str]] = {"lsm": "1", "z": "m2 s-2", "slt": "1"}
STATIC_LONG_NAMES: Final[dict[str, str]] = {
    "lsm": "land-sea mask (1 land, 0 sea)",
    "z": "surface geopotential",
    "slt": "soil type (ERA5 code: 0 none, 1 coarse .. 7 tropical organic)",
}

GFS_SOIL_CLASSES: Final[dict[int, str]] = {
    0: "none (sea point)", 1: "sand", 2: "loamy sand", 3: "sandy loam", 4: "silt loam",
    5: "silt", 6: "loam", 7: "sandy clay loam", 8: "silty clay loam", 9: "clay loam",
    10: "sandy clay", 11: "silty clay", 12: "clay", 13: "organic material", 14: "water",
    15: "bedrock", 16: "other (land ice)", 17: "playa", 18: "lava", 19: "white sand",
}
ERA5_SOIL_CLASSES: Final[dict[int, str]] = {
    0: "no soil / water", 1: "coarse", 2: "medium", 3: "medium fine", 4: "fine",
    5: "very fine", 6: "organic", 7: "tropical organic",
}
GFS_TO_ERA5_SOIL: Final[dict[int, int]] = {
    0: 0, 1: 1, 2: 1, 3: 2, 4: 2, 5: 3, 6: 2, 7: 2, 8: 3, 9: 2, 10: 4, 11: 4, 12: 4,
    13: 6, 14: 0, 15: 1, 16: 2, 17: 4, 18: 1, 19: 1,
}
_LOOKUP = np.array([GFS_TO_ERA5_SOIL[k] for k in range(len(GFS_TO_ERA5_SOIL))], dtype=np.float32)


def cache_key(name: str) -> FieldKey:
    """The message-cache key of one static field (distinct from every canonical field)."""
    return (f"static-{name}", None)


def era5_soil_type(gfs_classes: np.ndarray) -> np.ndarray:
    """ERA5 soil codes (float32) from GFS STATSGO classes; missing points become 0.

    A value that is not a class of ``GFS_SOIL_CLASSES`` raises ``GfsDecodeError``.
    """
    values = np.nan_to_num(np.asarray(gfs_classes, dtype=np.float64), nan=0.0)
    classes = np.rint(values)
    bad = (np.abs(values - classes) > 1e-3) | (classes < 0) | (classes >= _LOOKUP.size)
    if bad.any():
        raise GfsDecodeError(f"SOTYP:surface: {int(bad.sum())} value(s) are not GFS soil "
                             f"classes 0..{_LOOKUP.size - 1}, e.g. {values[bad][0]:g}")
    return _LOOKUP[classes.astype(np.int64)]


def _convert(name: str, values: np.ndarray) -> np.ndarray:
    """GRIB units to ours; ``lsm`` and ``z`` must have no missing points."""
    if name == "slt":
        return era5_soil_type(values)
    code = STATIC_CODES[name]
    missing = int(np.isnan(values).sum())
    if missing:
        raise GfsDecodeError(f"{code.var}:{code.level}: {missing} missing point(s)")
    if name == "z":
        return (values * np.float32(STANDARD_GRAVITY)).astype(np.float32)
    if values.min() < 0 or values.max() > 1:  # e.g. a 0/1/2 sea/land/ice mask
        raise GfsDecodeError(f"{code.var}:{code.level}: values {values.min():g}..{values.max():g}"
                             " outside 0..1")
    return values.astype(np.float32)


def decode_statics(messages: Mapping[str, bytes], what: str = "") -> xr.Dataset:
    """The statics dataset from one GRIB2 message per ``STATIC_CODES`` name.

    Variables ``lsm, z, slt`` (float32, latitude x longitude, the file's grid and order);
    the three messages must share one grid.
    """
    decoded = {}
    for name in STATIC_VARIABLES:
        code = STATIC_CODES[name]
        label = f"{what} :{code.var}:{code.level}:".strip()
        decoded[name] = decode_code(messages[name], code, label)
    grid = decoded["lsm"][0]
    for name, (other, _) in decoded.items():
        if other != grid:
            raise GfsDecodeError(f"{what}: {name} is on grid {other.to_dict()}, "
                                 f"lsm on {grid.to_dict()}")
    return statics_dataset(grid, {name: _convert(name, v) for name, (_, v) in decoded.items()})


def statics_dataset(grid: Grid, arrays: Mapping[str, np.ndarray]) -> xr.Dataset:
    """A statics dataset on ``grid`` from arrays already in our units."""
    data_vars = {
        name: (("latitude", "longitude"), np.asarray(arrays[name], dtype=np.float32),
               {"units": STATIC_UNITS[name], "long_name": STATIC_LONG_NAMES[name]})
        for name in STATIC_VARIABLES
    }
    return xr.Dataset(data_vars, coords=grid_coords(grid))

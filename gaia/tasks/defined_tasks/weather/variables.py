"""The fields a forecast holds, fixed by the protocol version (docs/ARCHITECTURE.md,
"Protocol").

Canonical names are the ECMWF short names used everywhere inside the project:
surface ``2t, 10u, 10v, msl`` (dims time, latitude, longitude) and pressure-level
``t, u, v, q, z`` (dims time, level, latitude, longitude; level in hPa). Units are SI:
K, m s-1, Pa, kg kg-1 and m2 s-2 (geopotential, not height).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

PROTOCOL_VERSION: Final = "2"  # v2: bit-rounded fields (forecast_codec); v1 stored them lossless

SURFACE_VARIABLES: Final[tuple[str, ...]] = ("2t", "10u", "10v", "msl")
LEVEL_VARIABLES: Final[tuple[str, ...]] = ("t", "u", "v", "q", "z")
ALL_VARIABLES: Final[tuple[str, ...]] = SURFACE_VARIABLES + LEVEL_VARIABLES

PRESSURE_LEVELS_HPA: Final[tuple[int, ...]] = (
    50, 100, 150, 200, 250, 300, 400, 500, 600, 700, 850, 925, 1000,
)

LEAD_STEP_HOURS: Final = 6
MAX_LEAD_HOURS: Final = 240
FORECAST_LEAD_HOURS: Final[tuple[int, ...]] = tuple(
    range(LEAD_STEP_HOURS, MAX_LEAD_HOURS + 1, LEAD_STEP_HOURS)
)
# What validators read of those leads: day-1 scoring against GFS as soon as a forecast is
# committed, ERA5 scoring of every 24th hour once ERA5 covers it, nominally ERA5_DELAY after
# its valid time. Miners' retention promise (retention.py) counts on these.
DAY1_LEAD_HOURS: Final[tuple[int, ...]] = (6, 12, 24)
ERA5_LEAD_HOURS: Final[tuple[int, ...]] = tuple(range(24, MAX_LEAD_HOURS + 1, 24))
ERA5_DELAY: Final = timedelta(days=5)

STANDARD_GRAVITY: Final = 9.80665  # m s-2; z = STANDARD_GRAVITY * geopotential height

UNITS: Final[dict[str, str]] = {
    "2t": "K",
    "10u": "m s-1",
    "10v": "m s-1",
    "msl": "Pa",
    "t": "K",
    "u": "m s-1",
    "v": "m s-1",
    "q": "kg kg-1",
    "z": "m2 s-2",
}


def is_level_variable(name: str) -> bool:
    """True for pressure-level variables, False for surface ones; unknown names raise."""
    if name in LEVEL_VARIABLES:
        return True
    if name in SURFACE_VARIABLES:
        return False
    raise KeyError(f"unknown variable {name!r}; known: {', '.join(ALL_VARIABLES)}")


def field_keys() -> list[tuple[str, int | None]]:
    """Every (variable, level) field of a forecast step: 4 surface + 5 x 13 levels = 69."""
    keys: list[tuple[str, int | None]] = [(name, None) for name in SURFACE_VARIABLES]
    keys += [(name, level) for name in LEVEL_VARIABLES for level in PRESSURE_LEVELS_HPA]
    return keys

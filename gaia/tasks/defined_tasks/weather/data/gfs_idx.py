"""wgrib2 ``.idx`` inventories of GFS pgrb2 files and the GFS lexicon.

Rules follow the real inventories (realdata/gfs_idx/GFS_IDX_FACTS.md): fields are matched
on the exact ``VAR`` and ``LEVEL`` fields (``TMP:2 m above ground`` is not ``TMP:2 mb``),
duplicated lines are kept, ``N.M`` sub-messages share one offset (and one byte range),
and the last message's range is open-ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gaia.tasks.defined_tasks.weather.variables import field_keys

FieldKey = tuple[str, int | None]  # (canonical name, level in hPa or None)
K = TypeVar("K")


class InventoryError(ValueError):
    """An inventory line does not follow the wgrib2 short-inventory format."""


class GfsMessageMissing(LookupError):
    """A needed field is not in a file's inventory; the message names it."""


@dataclass(frozen=True)
class GribCode:
    """How one canonical field is written in a GFS file: idx strings and GRIB2 keys."""

    var: str  # wgrib2 name, e.g. "TMP"
    level: str  # wgrib2 level string, e.g. "500 mb", "2 m above ground"
    discipline: int
    category: int
    number: int
    surface_type: int  # typeOfFirstFixedSurface: 100 isobaric, 103 above ground, 101 msl
    surface_value: int  # Pa for isobaric, m above ground, 0 for msl


_SURFACE_CODES: dict[str, GribCode] = {
    "2t": GribCode("TMP", "2 m above ground", 0, 0, 0, 103, 2),
    "10u": GribCode("UGRD", "10 m above ground", 0, 2, 2, 103, 10),
    "10v": GribCode("VGRD", "10 m above ground", 0, 2, 3, 103, 10),
    "msl": GribCode("PRMSL", "mean sea level", 0, 3, 1, 101, 0),
}
_LEVEL_PARAMS: dict[str, tuple[str, int, int]] = {
    "t": ("TMP", 0, 0),
    "u": ("UGRD", 2, 2),
    "v": ("VGRD", 2, 3),
    "q": ("SPFH", 1, 0),
    "z": ("HGT", 3, 5),  # geopotential height (gpm); converted to z on decode
}


def grib_code(key: FieldKey) -> GribCode:
    """The GFS code of a canonical field; an unknown field raises ``KeyError``."""
    name, level = key
    if level is None:
        if name not in _SURFACE_CODES:
            raise KeyError(f"no GFS surface field for {name!r}")
        return _SURFACE_CODES[name]
    if name not in _LEVEL_PARAMS:
        raise KeyError(f"no GFS pressure-level field for {name!r}")
    var, category, number = _LEVEL_PARAMS[name]
    return GribCode(var, f"{level} mb", 0, category, number, 100, level * 100)


def needed_fields(
    variables: Sequence[str] | None = None, levels: Sequence[int] | None = None
) -> list[FieldKey]:
    """The canonical fields for a variable/level subset (default: all 69)."""
    keys = field_keys()
    if variables is not None:
        unknown = set(variables) - {name for name, _ in keys}
        if unknown:
            raise KeyError(f"unknown variables: {sorted(unknown)}")
        keys = [k for k in keys if k[0] in variables]
    if levels is not None:
        keys = [k for k in keys if k[1] is None or k[1] in levels]
    return keys


@dataclass(frozen=True)
class IdxEntry:
    """One inventory line; ``end`` is exclusive, None for the file's last message."""

    number: str  # "12" or "12.1"
    offset: int
    end: int | None
    ref_time: str  # d=YYYYMMDDHH (the cycle, not the valid time)
    var: str
    level: str
    ftime: str

    @property
    def message(self) -> int:
        return int(self.number.split(".")[0])

    @property
    def line_key(self) -> str:
        return f":{self.var}:{self.level}:"


def _parse_line(line: str) -> tuple[str, int, str, str, str, str]:
    parts = line.split(":")
    if len(parts) < 6 or not parts[2].startswith("d="):
        raise InventoryError(f"not a wgrib2 inventory line: {line!r}")
    try:
        offset = int(parts[1])
    except ValueError as exc:
        raise InventoryError(f"bad byte offset in line: {line!r}") from exc
    return parts[0], offset, parts[2][2:], parts[3], parts[4], parts[5]


def parse_inventory(text: str) -> list[IdxEntry]:
    """Parse a wgrib2 inventory into entries with byte ranges (duplicates kept)."""
    rows = [_parse_line(line) for line in text.splitlines() if line.strip()]
    if not rows:
        raise InventoryError("empty inventory")
    offsets = sorted({row[1] for row in rows})
    next_offset = dict(zip(offsets, [*offsets[1:], None], strict=True))
    return [
        IdxEntry(number, offset, next_offset[offset], ref, var, level, ftime)
        for number, offset, ref, var, level, ftime in rows
    ]


def expected_ftime(lead_hours: int) -> tuple[str, ...]:
    """FTIME strings of an instantaneous field at a lead (f000 says ``anl``), usual first."""
    if lead_hours == 0:
        return ("anl", "0 hour fcst")
    return (f"{lead_hours} hour fcst",)


def select_messages(
    entries: Sequence[IdxEntry], fields: Iterable[FieldKey], lead_hours: int, source: str = ""
) -> dict[FieldKey, IdxEntry]:
    """Pick the entry of every canonical field (see ``select_codes``)."""
    return select_codes(entries, {field: grib_code(field) for field in fields}, lead_hours, source)


def select_codes(
    entries: Sequence[IdxEntry], codes: Mapping[K, GribCode], lead_hours: int, source: str = ""
) -> dict[K, IdxEntry]:
    """Pick the entry of every code by exact VAR and LEVEL (and instantaneous FTIME).

    The first matching line wins (duplicates describe the same field). Missing fields
    raise ``GfsMessageMissing`` naming each one and the file.
    """
    ftimes = expected_ftime(lead_hours)
    by_key: dict[tuple[str, str], IdxEntry] = {}
    for entry in entries:
        if entry.ftime in ftimes:
            by_key.setdefault((entry.var, entry.level), entry)
    picked: dict[K, IdxEntry] = {}
    missing: list[str] = []
    for name, code in codes.items():
        found = by_key.get((code.var, code.level))
        if found is None:
            missing.append(f":{code.var}:{code.level}:{ftimes[0]}:")
        else:
            picked[name] = found
    if missing:
        where = f" in {source}" if source else ""
        raise GfsMessageMissing(f"{len(missing)} message(s) missing{where}: {', '.join(missing)}")
    return picked


@dataclass(frozen=True)
class ByteRange:
    """A half-open byte range; ``end`` None means to the end of the file."""

    start: int
    end: int | None

    @property
    def header(self) -> str:
        return f"bytes={self.start}-" if self.end is None else f"bytes={self.start}-{self.end - 1}"

    @property
    def length(self) -> int | None:
        return None if self.end is None else self.end - self.start


def merge_ranges(entries: Iterable[IdxEntry]) -> list[ByteRange]:
    """The byte ranges covering the entries' messages, adjacent ranges merged.

    Sub-messages sharing an offset collapse into one range; ranges that touch are joined;
    ranges with a gap stay apart (no unneeded bytes are fetched).
    """
    spans = sorted({(e.offset, e.end) for e in entries}, key=lambda s: s[0])
    merged: list[ByteRange] = []
    for start, end in spans:
        last = merged[-1] if merged else None
        if last is not None and last.end == start:
            merged[-1] = ByteRange(last.start, end)
        else:
            merged.append(ByteRange(start, end))
    return merged


def format_idx_line(number: int, offset: int, ref_time: str, code: GribCode, lead: int) -> str:
    """One wgrib2-style inventory line, as NOAA publishes it (trailing colon)."""
    ftime = "anl" if lead == 0 else f"{lead} hour fcst"
    return f"{number}:{offset}:d={ref_time}:{code.var}:{code.level}:{ftime}:"

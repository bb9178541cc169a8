"""wgrib2 inventory parsing, field selection and byte-range merging (in-memory text)."""

from __future__ import annotations

import pytest

from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    ByteRange,
    GfsMessageMissing,
    InventoryError,
    grib_code,
    merge_ranges,
    needed_fields,
    parse_inventory,
    select_messages,
)

INVENTORY = """\
1:0:d=2025080100:PRMSL:mean sea level:anl:
2:100:d=2025080100:TMP:2 mb:anl:
3:250:d=2025080100:UGRD:10 mb:anl:
4:300:d=2025080100:HGT:500 mb:anl:
5:420:d=2025080100:TMP:500 mb:anl:
6:500:d=2025080100:RH:500 mb:anl:
7:600:d=2025080100:TMP:2 m above ground:anl:
8:700:d=2025080100:UGRD:10 m above ground:anl:
8:700:d=2025080100:UGRD:10 m above ground:anl:
9.1:800:d=2025080100:UGRD:850 mb:anl:
9.2:800:d=2025080100:VGRD:850 mb:anl:
10:950:d=2025080100:VGRD:10 m above ground:anl:
"""


def test_parse_gives_ranges_with_open_last_message() -> None:
    entries = parse_inventory(INVENTORY)
    assert len(entries) == 12  # duplicated line kept
    assert (entries[0].offset, entries[0].end) == (0, 100)
    assert entries[-1].end is None
    sub_u, sub_v = entries[9], entries[10]
    assert (sub_u.number, sub_v.number) == ("9.1", "9.2")
    assert (sub_u.offset, sub_u.end) == (sub_v.offset, sub_v.end) == (800, 950)
    assert sub_u.message == 9


def test_prefix_trap_is_avoided() -> None:
    picked = select_messages(parse_inventory(INVENTORY), [("2t", None), ("10u", None)], 0)
    assert picked[("2t", None)].number == "7"  # not "TMP:2 mb" (message 2)
    assert picked[("10u", None)].number == "8"  # not "UGRD:10 mb" (message 3)


def test_forecast_file_needs_matching_ftime() -> None:
    text = INVENTORY.replace(":anl:", ":6 hour fcst:")
    picked = select_messages(parse_inventory(text), [("msl", None)], 6)
    assert picked[("msl", None)].offset == 0
    with pytest.raises(GfsMessageMissing, match=":PRMSL:mean sea level:anl:"):
        select_messages(parse_inventory(text), [("msl", None)], 0)


def test_missing_message_names_each_field_and_file() -> None:
    with pytest.raises(GfsMessageMissing) as info:
        select_messages(parse_inventory(INVENTORY), [("q", 500), ("z", 850), ("t", 500)], 0,
                        source="http://x/f000.idx")
    text = str(info.value)
    assert "2 message(s) missing in http://x/f000.idx" in text
    assert ":SPFH:500 mb:anl:" in text and ":HGT:850 mb:anl:" in text


def test_merge_joins_adjacent_keeps_gaps_and_collapses_submessages() -> None:
    entries = parse_inventory(INVENTORY)
    picked = select_messages(entries, [("z", 500), ("t", 500), ("u", 850), ("v", 850),
                                       ("10u", None), ("10v", None)], 0)
    ranges = merge_ranges(picked.values())
    assert ranges == [ByteRange(300, 500), ByteRange(700, None)]
    assert ranges[0].header == "bytes=300-499"
    assert ranges[1].header == "bytes=700-"


def test_bad_lines_are_rejected() -> None:
    with pytest.raises(InventoryError, match="not a wgrib2 inventory line"):
        parse_inventory("hello world\n")
    with pytest.raises(InventoryError, match="bad byte offset"):
        parse_inventory("1:x:d=2025080100:TMP:2 m above ground:anl:\n")
    with pytest.raises(InventoryError, match="empty"):
        parse_inventory("\n")


def test_lexicon_covers_all_69_fields() -> None:
    keys = needed_fields()
    assert len(keys) == 69
    codes = {(grib_code(k).var, grib_code(k).level) for k in keys}
    assert len(codes) == 69
    assert ("HGT", "1000 mb") in codes and ("PRMSL", "mean sea level") in codes
    assert needed_fields(["t"], [500, 850]) == [("t", 500), ("t", 850)]
    with pytest.raises(KeyError, match="unknown variables"):
        needed_fields(["tp"])

"""Every real GFS inventory parses; the 69 needed messages are picked exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.tasks.defined_tasks.weather.data.gfs_idx import (
    GfsMessageMissing,
    merge_ranges,
    needed_fields,
    parse_inventory,
    select_messages,
)

from .realdata import realdata_dir

# file -> lead hours of its instantaneous fields (None: an excerpt, parse only)
LEADS = {
    "reformatters__gfs.t00z.pgrb2.0p25.f000.idx": 0,
    "reformatters__gfs.t00z.pgrb2.0p25.f007.idx": 7,
    "kerchunk__20221014_gfs.t00z.pgrb2.0p25.f000.idx": 0,
    "kerchunk__20221014_gfs.t06z.pgrb2.0p25.f021.idx": 21,
    "kerchunk__20231104_gfs.t00z.pgrb2.0p25.f000.idx": 0,
    "kerchunk__20231104_gfs.t00z.pgrb2.0p25.f021.idx": 21,
    "kerchunk__gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx": None,
}
LINE_COUNTS = {"reformatters__gfs.t00z.pgrb2.0p25.anl.idx": 610,
               "reformatters__gfs.t00z.pgrb2.0p25.f000.idx": 696,
               "reformatters__gfs.t00z.pgrb2.0p25.f007.idx": 743}


def _idx(name: str) -> Path:
    return realdata_dir("gfs_idx") / name


ANL = "reformatters__gfs.t00z.pgrb2.0p25.anl.idx"


def test_every_real_inventory_is_known_here() -> None:
    names = {p.name for p in realdata_dir("gfs_idx").glob("*.idx")}
    assert names - {n for n in names if n.startswith("keylines__")} == {*LEADS, ANL}


def test_anl_file_lacks_the_surface_fields_so_f000_is_the_analysis() -> None:
    entries = parse_inventory(_idx(ANL).read_text())
    assert len(entries) == LINE_COUNTS[ANL]
    with pytest.raises(GfsMessageMissing) as info:
        select_messages(entries, needed_fields(), 0, source=ANL)
    assert str(info.value) == (
        f"3 message(s) missing in {ANL}: :TMP:2 m above ground:anl:, "
        ":UGRD:10 m above ground:anl:, :VGRD:10 m above ground:anl:"
    )


@pytest.mark.parametrize("name", sorted(LEADS))
def test_real_inventory_parses_and_yields_69_fields(name: str) -> None:
    text = _idx(name).read_text()
    entries = parse_inventory(text)
    assert len(entries) == len(text.splitlines())
    if name in LINE_COUNTS:
        assert len(entries) == LINE_COUNTS[name]
    offsets = [e.offset for e in entries]
    if LEADS[name] is None:
        return
    assert offsets == sorted(offsets) and entries[-1].end is None
    picked = select_messages(entries, needed_fields(), LEADS[name], source=name)
    assert len(picked) == 69
    assert len({e.offset for e in picked.values()}) == 69
    assert len(merge_ranges(picked.values())) < 69  # adjacent messages are merged


@pytest.mark.parametrize(("name", "keylines"), [
    ("reformatters__gfs.t00z.pgrb2.0p25.f000.idx", "keylines__gfs.t00z.pgrb2.0p25.f000.idx"),
    ("reformatters__gfs.t00z.pgrb2.0p25.f007.idx", "keylines__gfs.t00z.pgrb2.0p25.f007.idx"),
])
def test_picked_lines_are_exactly_the_keylines(name: str, keylines: str) -> None:
    lead = LEADS[name]
    assert lead is not None
    picked = select_messages(parse_inventory(_idx(name).read_text()), needed_fields(), lead)
    expected = {line.split(":")[0] for line in _idx(keylines).read_text().splitlines() if line}
    assert {e.number for e in picked.values()} == expected


def test_prefix_trap_in_real_f000() -> None:
    entries = parse_inventory(_idx("reformatters__gfs.t00z.pgrb2.0p25.f000.idx").read_text())
    picked = select_messages(entries, [("2t", None), ("10u", None), ("10v", None)], 0)
    assert [picked[k].number for k in picked] == ["580", "585", "586"]


def test_duplicated_lines_in_real_excerpt_are_kept() -> None:
    entries = parse_inventory(_idx("kerchunk__gfs.t00z.pgrb2.0p25.f006.test-limit-100.idx")
                              .read_text())
    apcp = [e for e in entries if e.var == "APCP"]
    assert len(apcp) == 2 and apcp[0].ftime == apcp[1].ftime
    assert apcp[0].end == apcp[1].offset

"""Real NCEP GRIB2 files decode to the canonical form (incl. old packed U/V messages)."""

from __future__ import annotations

import csv
from pathlib import Path

import cfgrib
import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.canonical import fields_to_dataset
from gaia.tasks.defined_tasks.weather.data.grib import decode_file, decode_message
from gaia.tasks.defined_tasks.weather.variables import PRESSURE_LEVELS_HPA, STANDARD_GRAVITY

from .realdata import realdata_dir

EXPECTED = {
    "availabs_gfs.t00z.pgrb2.1p00.f000_850mb_20150915.grib2": ({"t", "u", "v", "z"}, (181, 360)),
    "grib2io_gfs.complex.grib2": ({"z"}, (721, 1440)),
    "hamosapience_gfs.t00z.pgrb2.1p00.f000_UGRD-VGRD-10m_20150419.grib2": (
        {"10u", "10v"}, (181, 360)),
    "narduk_gfs_sample_TMP2m_0p25_20251201_00z_f000.grib2": ({"2t"}, (721, 1440)),
    "pygrib_gfs.t12z.pgrbf120.2p5deg.grib2": (
        {"2t", "10u", "10v", "msl", "t", "u", "v", "z"}, (73, 144)),
}
PLAUSIBLE = {"2t": (180, 340), "t": (170, 330), "u": (-120, 120), "v": (-120, 120),
             "10u": (-60, 60), "10v": (-60, 60), "msl": (9e4, 1.1e5), "z": (-5e3, 2.5e5)}
OLD_GFS = "pygrib_gfs.t12z.pgrbf120.2p5deg.grib2"


def _path(name: str) -> Path:
    return realdata_dir("gfs_grib") / name


def test_every_real_grib_file_is_listed() -> None:
    assert {p.name for p in realdata_dir("gfs_grib").glob("*.grib2")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_file_decodes_to_canonical_form(name: str) -> None:
    fields = decode_file(_path(name))
    times = sorted({f.valid_time for f in fields})
    ds = fields_to_dataset(fields, times)
    variables, shape = EXPECTED[name]
    assert set(ds.data_vars) == variables
    assert (ds.sizes["latitude"], ds.sizes["longitude"]) == shape
    assert ds["latitude"].values[0] == 90.0 and ds["longitude"].values[0] == 0.0
    assert np.all(np.diff(ds["longitude"].values) > 0)
    for name_, values in ds.data_vars.items():
        low, high = PLAUSIBLE[str(name_)]
        finite = values.values[np.isfinite(values.values)]
        assert finite.size and low < finite.min() and finite.max() < high, name_


def test_old_gfs_has_all_13_levels_for_packed_winds() -> None:
    ds = fields_to_dataset(fields := decode_file(_path(OLD_GFS)), [fields[0].valid_time])
    assert list(ds["level"].values) == list(PRESSURE_LEVELS_HPA)
    assert not np.isnan(ds["u"].values).any() and not np.isnan(ds["v"].values).any()
    assert str(fields[0].valid_time) == "2011-01-15 12:00:00+00:00"  # 2011-01-10 12z + 120 h


def test_old_gfs_values_match_cfgrib() -> None:
    ours = fields_to_dataset(fields := decode_file(_path(OLD_GFS)), [fields[0].valid_time])
    ref = cfgrib.open_dataset(_path(OLD_GFS), indexpath="",
                              filter_by_keys={"typeOfLevel": "isobaricInhPa"})
    for name in ("u", "v", "t"):
        np.testing.assert_allclose(ours[name].sel(level=500).values[0],
                                   ref[name].sel(isobaricInhPa=500).values, rtol=1e-6)
    np.testing.assert_allclose(ours["z"].sel(level=500).values[0],
                               ref["gh"].sel(isobaricInhPa=500).values * STANDARD_GRAVITY,
                               rtol=1e-6)


def test_byte_slice_of_packed_message_yields_the_second_field() -> None:
    rows = list(csv.DictReader(_path(OLD_GFS + ".eccodes-inventory.tsv").open(), delimiter="\t"))
    starts = sorted({int(r["offset"]) for r in rows})
    u500 = next(r for r in rows if r["shortName"] == "u" and r["level"] == "500")
    start = int(u500["offset"])
    end = starts[starts.index(start) + 1]
    data = _path(OLD_GFS).read_bytes()[start:end]
    whole = {f.key: f for f in decode_file(_path(OLD_GFS))}
    v500 = decode_message(data, ("v", 500))
    np.testing.assert_array_equal(v500.values, whole[("v", 500)].values)
    assert not np.array_equal(v500.values, whole[("u", 500)].values)

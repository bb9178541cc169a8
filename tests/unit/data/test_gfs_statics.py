"""The GFS static fields: their GRIB codes as ecCodes reads them, decoding, soil mapping."""

from __future__ import annotations

from datetime import UTC, datetime

import eccodes as ec
import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.gfs_statics import (
    ERA5_SOIL_CLASSES,
    GFS_SOIL_CLASSES,
    GFS_TO_ERA5_SOIL,
    STATIC_CODES,
    STATIC_VARIABLES,
    cache_key,
    decode_statics,
    era5_soil_type,
)
from gaia.tasks.defined_tasks.weather.data.grib import GfsDecodeError, GribEncoder, decode_code
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY, field_keys

REF = datetime(2025, 1, 1, 0, tzinfo=UTC)
GRID = Grid.regular(10.0)


@pytest.fixture
def encoder():  # noqa: ANN201
    enc = GribEncoder(GRID)
    yield enc
    enc.close()


def _statics_values() -> dict[str, np.ndarray]:
    """GRIB-unit values: land 1/0, orography (gpm, 0 at sea), STATSGO classes (14 at sea)."""
    rng = np.random.default_rng(7)
    land = (rng.uniform(size=GRID.shape) < 0.4).astype(float)
    soil = np.where(land == 1, rng.integers(1, 20, GRID.shape), 14).astype(float)
    return {"lsm": land, "z": land * rng.uniform(0, 4000, GRID.shape), "slt": soil}


def _messages(encoder: GribEncoder, values: dict[str, np.ndarray]) -> dict[str, bytes]:
    return {name: encoder.encode_code(STATIC_CODES[name], values[name], REF, 0)
            for name in STATIC_VARIABLES}


@pytest.mark.parametrize(("name", "short_name", "long_name"), [
    ("lsm", "lsm", "Land-sea mask"), ("z", "orog", "Orography"), ("slt", "slt", "Soil type"),
])
def test_codes_are_what_eccodes_calls_the_fields(encoder, name, short_name, long_name) -> None:  # noqa: ANN001
    message = encoder.encode_code(STATIC_CODES[name], _statics_values()[name], REF, 0)
    handle = ec.codes_new_from_message(message)
    try:
        assert ec.codes_get(handle, "shortName") == short_name
        assert ec.codes_get(handle, "name") == long_name
        assert ec.codes_get(handle, "typeOfLevel") == "surface"
    finally:
        ec.codes_release(handle)


def test_codes_follow_the_real_inventory_names() -> None:
    assert [(c.var, c.level) for c in STATIC_CODES.values()] == [
        ("HGT", "surface"), ("SOTYP", "surface"), ("LAND", "surface")]
    canonical = {cache_key(name) for name in STATIC_VARIABLES} & set(field_keys())
    assert not canonical


def test_soil_mapping_is_total_over_the_gfs_classes() -> None:
    assert set(GFS_TO_ERA5_SOIL) == set(GFS_SOIL_CLASSES) == set(range(20))
    assert set(GFS_TO_ERA5_SOIL.values()) <= set(ERA5_SOIL_CLASSES)
    assert (GFS_TO_ERA5_SOIL[0], GFS_TO_ERA5_SOIL[14]) == (0, 0)  # sea point, water
    assert GFS_TO_ERA5_SOIL[1] == 1 and GFS_TO_ERA5_SOIL[6] == 2 and GFS_TO_ERA5_SOIL[13] == 6
    assert all(GFS_TO_ERA5_SOIL[k] != 0 for k in GFS_SOIL_CLASSES if k not in (0, 14))


def test_era5_soil_type_maps_every_point() -> None:
    gfs = np.array([[14.0, 1.0, 12.0], [13.0, np.nan, 16.0]])
    got = era5_soil_type(gfs)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, [[0, 1, 4], [6, 0, 2]])


@pytest.mark.parametrize("bad", [20.0, -1.0, 3.5])
def test_a_value_that_is_not_a_soil_class_is_refused(bad: float) -> None:
    with pytest.raises(GfsDecodeError, match="not GFS soil classes 0..19"):
        era5_soil_type(np.array([1.0, bad]))


def test_decode_statics_converts_to_our_units(encoder) -> None:  # noqa: ANN001
    values = _statics_values()
    ds = decode_statics(_messages(encoder, values), "f000")
    assert list(ds.data_vars) == list(STATIC_VARIABLES)
    assert all(ds[n].dtype == np.float32 and ds[n].dims == ("latitude", "longitude")
               for n in STATIC_VARIABLES)
    np.testing.assert_array_equal(ds["lsm"].values, values["lsm"])
    np.testing.assert_allclose(ds["z"].values, values["z"] * STANDARD_GRAVITY,
                               atol=4000 / 2**15 * STANDARD_GRAVITY)
    np.testing.assert_array_equal(ds["slt"].values, era5_soil_type(values["slt"]))
    assert ds["z"].attrs["units"] == "m2 s-2"
    np.testing.assert_array_equal(ds["latitude"].values, GRID.lat)


def test_decode_code_refuses_another_parameter(encoder) -> None:  # noqa: ANN001
    message = encoder.encode_code(STATIC_CODES["z"], _statics_values()["z"], REF, 0)
    with pytest.raises(GfsDecodeError, match="f000: message does not hold the field :LAND:surface:"):
        decode_code(message, STATIC_CODES["lsm"], "f000")


def test_statics_on_different_grids_are_refused(encoder) -> None:  # noqa: ANN001
    messages = _messages(encoder, _statics_values())
    other = GribEncoder(Grid.regular(20.0))
    try:
        messages["slt"] = other.encode_code(STATIC_CODES["slt"], np.full((10, 18), 14.0), REF, 0)
    finally:
        other.close()
    with pytest.raises(GfsDecodeError, match="f000: slt is on grid"):
        decode_statics(messages, "f000")


def test_a_land_mask_outside_0_1_is_refused(encoder) -> None:  # noqa: ANN001
    values = _statics_values()
    values["lsm"] = values["lsm"] * 2  # sea/land/ice coded 0/1/2 is not a land fraction
    with pytest.raises(GfsDecodeError, match=r"LAND:surface: values 0\.\.2 outside 0\.\.1"):
        decode_statics(_messages(encoder, values), "f000")

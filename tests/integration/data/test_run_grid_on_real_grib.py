"""The grid a run records by default (the protocol's ``GRID_DEG``) is the grid of real
0.25° GFS files, which is what a miner forecasting from GFS declares in its manifest; a
real 1° file's grid is refused. The localnet's 5° archive cannot show this."""

from __future__ import annotations

import pytest

from gaia.config import ValidatorSettings
from gaia.tasks.defined_tasks.weather.data.canonical import fields_to_dataset
from gaia.tasks.defined_tasks.weather.data.grib import decode_file
from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch, check_forecast_grid
from gaia.tasks.defined_tasks.weather.protocol import GRID_DEG

from .realdata import realdata_dir

QUARTER_DEGREE = "narduk_gfs_sample_TMP2m_0p25_20251201_00z_f000.grib2"
ONE_DEGREE = "availabs_gfs.t00z.pgrb2.1p00.f000_850mb_20150915.grib2"


def _grid_of(name: str) -> Grid:
    fields = decode_file(realdata_dir("gfs_grib") / name)
    return Grid.from_dataset(fields_to_dataset(fields, sorted({f.valid_time for f in fields})))


def test_a_new_run_checks_against_the_grid_of_real_quarter_degree_gfs() -> None:
    run_grid = Grid.regular(ValidatorSettings().grid_deg)
    assert ValidatorSettings().grid_deg == GRID_DEG
    check_forecast_grid(_grid_of(QUARTER_DEGREE), run_grid)  # raises on any mismatch


def test_a_real_one_degree_forecast_does_not_fit_a_quarter_degree_run() -> None:
    with pytest.raises(GridMismatch):
        check_forecast_grid(_grid_of(ONE_DEGREE), Grid.regular(GRID_DEG))

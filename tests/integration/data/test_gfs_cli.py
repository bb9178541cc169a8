"""The operator commands of the GFS source, run against the local archive."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.gfs import main


def test_fetch_writes_canonical_netcdf(archive, archive_server, tmp_path) -> None:  # noqa: ANN001
    out = tmp_path / "gfs.nc"
    cycle = archive.init_times[0].strftime("%Y%m%d%H")
    status = main(["fetch", "--base-url", archive.gfs_base_url(archive_server.url),
                   "--cycle", cycle, "--lead", "0", "--lead", "6", "--variables", "t", "2t",
                   "--levels", "500", "850", "--out", str(out)])
    assert status == 0
    ds = xr.open_dataset(out)
    assert set(ds.data_vars) == {"t", "2t"}
    assert list(ds["level"].values) == [500, 850]
    assert list(ds["lead_hours"].values) == [0, 6]
    assert np.isfinite(ds["t"].values).all()


def test_inventory_marks_the_needed_messages(archive, archive_server, capsys) -> None:  # noqa: ANN001
    cycle = archive.init_times[0].strftime("%Y%m%d%H")
    assert main(["inventory", "--base-url", archive.gfs_base_url(archive_server.url),
                 "--cycle", cycle, "--lead", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 89  # f000: 83 messages, the 3 statics and 3 beside them
    assert sum(line.startswith("*") for line in lines) == 69
    assert any(" RH:500 mb:anl" in line and line.startswith(" ") for line in lines)


def test_unpublished_cycle_is_a_clear_error(archive, archive_server, capsys) -> None:  # noqa: ANN001
    status = main(["inventory", "--base-url", archive.gfs_base_url(archive_server.url),
                   "--cycle", "2030010100", "--lead", "0"])
    assert status == 1
    assert "is not published" in capsys.readouterr().err


@pytest.mark.parametrize("cycle", ["2025-01-01", "2025010103x"])
def test_bad_cycle_argument(cycle: str) -> None:
    with pytest.raises(SystemExit):
        main(["inventory", "--cycle", cycle, "--lead", "0"])

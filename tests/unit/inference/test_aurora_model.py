"""The Aurora adapter on a tiny random-weight network: the batch it builds, the rollout
one lead at a time, the forecast back on the input grid, and the weights reloaded exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from tests.fixtures.aurora import require_aurora, statics_arrays

require_aurora()

import torch  # noqa: E402

from gaia.tasks.defined_tasks.weather.data.grid import Grid  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.aurora_loader import load_aurora  # noqa: E402
from gaia.tasks.defined_tasks.weather.inference.aurora_model import (  # noqa: E402
    AuroraModel,
    check_grid,
    to_batch,
)
from gaia.tasks.defined_tasks.weather.inference.aurora_statics import (  # noqa: E402
    StaticFields,
)
from gaia.tasks.defined_tasks.weather.inference.base import (  # noqa: E402
    ForecastInputs,
    InvalidInputs,
    wants_gfs_statics,
)
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state  # noqa: E402
from gaia.tasks.defined_tasks.weather.variables import ALL_VARIABLES  # noqa: E402

T0 = np.datetime64("2025-01-02T00:00")
GRID = Grid.regular(5.0)


def inputs_on(grid: Grid, with_statics: bool = True) -> ForecastInputs:
    state = synthetic_state(grid, [T0 - np.timedelta64(6, "h"), T0], seed=5)
    statics = None
    if with_statics:
        arrays = statics_arrays(Grid.regular(5.0))
        if not grid.descending:
            arrays = {k: v[::-1] for k, v in arrays.items()}
        statics = xr.Dataset({k: (("latitude", "longitude"), v) for k, v in arrays.items()},
                             coords={"latitude": grid.lat, "longitude": grid.lon})
    return ForecastInputs.from_dataset(state, statics)


@pytest.fixture(scope="module")
def model(tiny_checkpoint: Path) -> AuroraModel:
    return load_aurora(variant="tiny", checkpoint=tiny_checkpoint, device="cpu", grid_deg=5.0)


def test_checkpoint_reloads_bit_identical(model: AuroraModel, tiny_checkpoint: Path) -> None:
    saved = torch.load(tiny_checkpoint, weights_only=True)
    loaded = model.network.state_dict()
    assert saved.keys() == loaded.keys()
    assert all(torch.equal(saved[key], loaded[key]) for key in saved)
    assert model.identity["variant"] == "tiny" and len(model.identity["checkpoint_sha256"]) == 64


def test_batch_is_north_to_south_with_history(model: AuroraModel) -> None:
    inputs = inputs_on(Grid.regular(5.0, descending=False))
    batch = to_batch(inputs, StaticFields(inputs.grid, inputs.statics))
    assert float(batch.metadata.lat[0]) == 90.0 and float(batch.metadata.lat[-1]) == -90.0
    assert batch.surf_vars["2t"].shape == (1, 2, 37, 72)
    assert batch.atmos_vars["z"].shape == (1, 2, 13, 37, 72)
    # history index 1 is T0, flipped to north-to-south
    np.testing.assert_array_equal(batch.surf_vars["msl"][0, 1].numpy(),
                                  inputs.fields["msl"][1][::-1])
    assert batch.metadata.atmos_levels == inputs.levels


def test_forecast_yields_each_lead_on_the_input_grid(model: AuroraModel) -> None:
    inputs = inputs_on(GRID)
    leads = [6, 12, 24]
    states = list(model.forecast(inputs, leads))
    assert [lead for lead, _ in states] == leads
    for lead, state in states:
        assert set(state.data_vars) == set(ALL_VARIABLES)
        assert Grid.from_dataset(state) == inputs.grid
        assert state["time"].values[0] == T0 + np.timedelta64(lead, "h")
        for name in ALL_VARIABLES:
            values = state[name].values
            assert values.dtype == np.float32 and np.all(np.isfinite(values)), name
            # the south pole row, which Aurora does not predict, is one value per field
            assert np.all(values[..., -1, :] == values[..., -1, :1]), name
        assert float(state["q"].min()) >= 0.0


def test_latitude_order_of_the_inputs_does_not_change_the_forecast(model: AuroraModel) -> None:
    south_up = dict(model.forecast(inputs_on(Grid.regular(5.0, descending=False)), [6]))[6]
    north_up = dict(model.forecast(inputs_on(GRID), [6]))[6]
    np.testing.assert_allclose(south_up["t"].values[..., ::-1, :], north_up["t"].values,
                               rtol=1e-5, atol=1e-3)


def test_statics_from_gfs_are_asked_for_and_required(model: AuroraModel) -> None:
    assert wants_gfs_statics(model) and not wants_gfs_statics(object())
    with pytest.raises(InvalidInputs, match="static fields"):
        model.forecast(inputs_on(GRID, with_statics=False), [6])


def test_grids_aurora_cannot_patch_are_refused() -> None:
    check_grid((721, 1440), 4)
    check_grid((37, 72), 4)
    with pytest.raises(InvalidInputs, match="91x180"):
        check_grid((91, 180), 4)


def test_leads_must_be_increasing_steps(model: AuroraModel) -> None:
    with pytest.raises(ValueError, match="increasing multiples"):
        model.forecast(inputs_on(GRID), [12, 6])
    with pytest.raises(ValueError, match="increasing multiples"):
        model.forecast(inputs_on(GRID), [9])

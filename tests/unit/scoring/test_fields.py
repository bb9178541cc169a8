"""One lead's fields as scoring sees them, and grid alignment."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.grid import Grid as DataGrid
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields
from gaia.tasks.defined_tasks.weather.scoring.fields import (
    GridMismatch,
    align_to,
    as_lead_fields,
)
from tests.fixtures.synthetic_weather import Grid, observed

LEVELS = (500, 850)


def test_reversed_latitudes_are_aligned_as_a_view():
    target = as_lead_fields(observed(Grid.regular(7, 12, descending=False), [24], LEVELS))
    source = as_lead_fields(observed(Grid.regular(7, 12, descending=True), [24], LEVELS))
    aligned = align_to(source, target.grid, "forecast")
    assert aligned.grid == target.grid
    np.testing.assert_array_equal(aligned[("2t", None)], target[("2t", None)])
    assert np.shares_memory(aligned[("2t", None)], source[("2t", None)])


def test_other_longitudes_are_a_grid_mismatch():
    dataset = observed(Grid.regular(7, 12), [24], LEVELS)
    shifted = dataset.assign_coords(longitude=dataset["longitude"].values + 15.0)
    with pytest.raises(GridMismatch, match="forecast: longitude"):
        align_to(as_lead_fields(shifted), as_lead_fields(dataset).grid, "forecast")


def test_a_forecast_without_pole_rows_needs_the_truth_on_its_grid():
    truth = as_lead_fields(observed(Grid.regular(15, 24), [24], LEVELS))
    inner = DataGrid(truth.grid.lat[1:-1][::-1], truth.grid.lon)
    with pytest.raises(GridMismatch, match="no pole rows"):
        align_to(LeadFields(inner, {}), truth.grid, "forecast")
    on_inner = truth.on_grid(inner)
    np.testing.assert_array_equal(on_inner[("z", 500)], truth[("z", 500)][1:-1][::-1])
    assert np.shares_memory(on_inner[("z", 500)], truth[("z", 500)])


def test_fields_of_a_dataset_and_their_absence():
    dataset = observed(Grid.regular(7, 12), [24], LEVELS).isel(lead_hours=0)
    fields = LeadFields.from_dataset(dataset)
    np.testing.assert_array_equal(fields[("z", 850)], dataset["z"].sel(level=850).values)
    assert fields[("2t", None)].shape == (7, 12)
    assert fields.get(("z", 300)) is None and fields.get(("2t", 500)) is None
    assert LeadFields.from_dataset(dataset.drop_vars("q")).get(("q", 500)) is None
    picked = LeadFields.from_dataset(dataset, [("t", 850), ("z", 500)])
    assert sorted(picked) == [("t", 850), ("z", 500)]


def test_a_field_of_another_shape_is_refused():
    grid = DataGrid.regular(30.0)
    with pytest.raises(GridMismatch, match="not of the grid's shape"):
        LeadFields(grid, {("2t", None): np.zeros((6, 12), np.float32)})

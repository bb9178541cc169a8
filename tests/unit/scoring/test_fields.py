"""Field access and grid alignment."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.scoring.fields import (
    FieldTable,
    GridMismatch,
    align_grid,
    squeeze_singletons,
)
from tests.fixtures.synthetic_weather import Grid, observed

LEVELS = (500, 850)


def test_reversed_latitudes_are_aligned_as_a_view():
    target = observed(Grid.regular(7, 12, descending=False), [24], LEVELS)
    source = observed(Grid.regular(7, 12, descending=True), [24], LEVELS)
    aligned = align_grid(source, target, "forecast")
    np.testing.assert_array_equal(aligned["latitude"].values, target["latitude"].values)
    np.testing.assert_array_equal(aligned["2t"].values, target["2t"].values)
    assert np.shares_memory(aligned["2t"].values, source["2t"].values)


def test_other_longitudes_are_a_grid_mismatch():
    target = observed(Grid.regular(7, 12), [24], LEVELS)
    shifted = target.assign_coords(longitude=target["longitude"].values - 180.0)
    with pytest.raises(GridMismatch, match="forecast: longitude"):
        align_grid(shifted, target, "forecast")


def test_field_table_reads_fields_and_reports_absence():
    dataset = squeeze_singletons(observed(Grid.regular(7, 12), [24], LEVELS))
    table = FieldTable(dataset)
    np.testing.assert_array_equal(table.get("z", 850), dataset["z"].sel(level=850).values)
    assert table.get("2t", None).shape == (7, 12)
    assert table.get("z", 300) is None
    assert FieldTable(dataset.drop_vars("q")).get("q", 500) is None


def test_field_table_refuses_a_level_mixup():
    table = FieldTable(observed(Grid.regular(7, 12), [24], LEVELS))
    with pytest.raises(ValueError, match="surface variable '2t'"):
        table.get("2t", 500)
    with pytest.raises(ValueError, match="'z' has a level dim"):
        table.get("z", None)

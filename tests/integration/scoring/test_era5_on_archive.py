"""ERA5 scoring of real built-in model forecasts on the local archive.

The forecasts come from the archive's GFS inputs (real GRIB2 read by ``GfsSource`` over
loopback) and are scored lead by lead by ``score_era5_lead`` against the archive's ERA5 and climatology
(real zarr, read as whole datasets by the xarray oracle the validator's field-level readers
are tested against): the skilful model must beat persistence, persistence must lose to
climatology at long leads, and a forecast missing a variable must score that variable at
the floor, keep its other scores and score lower.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.archive import ArchiveInfo
from gaia.tasks.defined_tasks.weather.data.gfs import GfsSource
from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs
from gaia.tasks.defined_tasks.weather.inference.registry import get_model
from gaia.tasks.defined_tasks.weather.scoring.era5 import Era5LeadResult
from gaia.tasks.defined_tasks.weather.scoring.fields import with_lead_hours
from gaia.tasks.defined_tasks.weather.scoring.rollup import RollupConfig, weighted_skill
from gaia.tasks.defined_tasks.weather.variables import ERA5_LEAD_HOURS
from tests.fixtures.archive import ArchiveUrls
from tests.fixtures.scoring import missing_of, score_leads
from tests.fixtures.xarray_references import xarray_climatology, xarray_truth

FALLING_FIELDS = (("z", 500), ("t", 850))
DROPPED_VARIABLE = "q"
Scored = dict[str, list[Era5LeadResult]]


def _forecast(model_name: str, inputs: ForecastInputs) -> xr.Dataset:
    """The model's forecast at the ERA5 leads, stacked on a ``lead_hours`` dim."""
    leads = list(ERA5_LEAD_HOURS)
    states = [
        state.squeeze("time", drop=True)
        for _, state in get_model(model_name).forecast(inputs, leads)
    ]
    return xr.concat(states, dim="lead_hours").assign_coords(lead_hours=leads)


def _references(urls: ArchiveUrls, init: datetime) -> tuple[xr.Dataset, xr.Dataset]:
    valid = [init + timedelta(hours=lead) for lead in ERA5_LEAD_HOURS]
    truth = xarray_truth(urls.era5, valid).load()
    climatology = xarray_climatology(urls.climatology, valid)
    return with_lead_hours(truth, init), with_lead_hours(climatology, init)


@pytest.fixture(scope="module")
def scored(
    archive: ArchiveInfo, archive_urls: ArchiveUrls, tmp_path_factory: pytest.TempPathFactory
) -> Scored:
    """ERA5 scores of persistence, spectral advection and spectral advection without ``q``."""
    init = archive.init_times[0]
    cache: Path = tmp_path_factory.mktemp("gfs-cache")

    async def fetch() -> xr.Dataset:
        async with GfsSource(archive_urls.gfs_base, cache) as gfs:
            return await gfs.fetch_inputs(init)

    inputs = ForecastInputs.from_dataset(asyncio.run(fetch()))
    truth, climatology = _references(archive_urls, init)
    forecasts = {name: _forecast(name, inputs) for name in ("persistence", "spectral_advection")}
    forecasts["without_q"] = forecasts["spectral_advection"].drop_vars(DROPPED_VARIABLE)
    return {name: score_leads(forecast, truth, climatology, ERA5_LEAD_HOURS)
            for name, forecast in forecasts.items()}


def test_the_better_model_has_the_higher_weighted_skill(scored: Scored) -> None:
    config = RollupConfig()
    better = weighted_skill(scored["spectral_advection"], config)
    plain = weighted_skill(scored["persistence"], config)
    assert better > plain, (better, plain)


@pytest.mark.parametrize(("variable", "level"), FALLING_FIELDS)
def test_persistence_skill_falls_below_climatology_by_ten_days(
    scored: Scored, variable: str, level: int
) -> None:
    skills = [lead.get(variable, level).skill for lead in scored["persistence"]]
    half = len(skills) // 2
    assert skills[0] > 0 > skills[-1], skills
    assert skills[0] > max(skills[1:]), skills
    assert sum(skills[:half]) / half > sum(skills[half:]) / (len(skills) - half), skills


def test_a_missing_variable_scores_the_floor_and_keeps_the_rest(
    scored: Scored,
) -> None:
    partial, full = scored["without_q"], scored["spectral_advection"]
    partial_fields = [f for lead in partial for f in lead.fields]
    full_fields = {(f.variable, f.level, f.lead_hours): f for lead in full for f in lead.fields}
    dropped = [f for f in partial_fields if f.variable == DROPPED_VARIABLE]
    assert dropped and len(dropped) == len([k for k in full_fields if k[0] == "q"])
    for era5_field in dropped:
        assert era5_field.skill == -1.0
        assert era5_field.scored.missing
        records = {r.metric.value: r.value for r in era5_field.records()}
        assert records["missing"] == 1.0 and records["skill"] == -1.0
    kept = [f for f in partial_fields if f.variable != DROPPED_VARIABLE]
    assert kept and not any(f.scored.missing for f in kept)
    for era5_field in kept:
        reference = full_fields[era5_field.variable, era5_field.level, era5_field.lead_hours]
        assert era5_field.skill == pytest.approx(reference.skill)
    assert {v for v, _, _ in missing_of(partial)} == {DROPPED_VARIABLE}
    config = RollupConfig()
    assert weighted_skill(partial, config) < weighted_skill(full, config)

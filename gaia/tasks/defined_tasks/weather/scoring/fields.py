"""Getting one lead's 2-D fields out of scoring inputs, on a common grid, without copies.

Scoring works on :class:`~gaia.tasks.defined_tasks.weather.data.lead_fields.LeadFields`
(what the verified reader and the reference cache return). Canonical datasets (``data/``;
surface variables with dims (…, latitude, longitude), level variables with dims (…, level,
latitude, longitude)) are accepted too and turned into LeadFields one lead at a time. Every
input is brought to the truth's latitude order with a reversed view; any other grid
difference is a ``GridMismatch`` (data/grid.py).
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch, check_forecast_grid
from gaia.tasks.defined_tasks.weather.data.lead_fields import LeadFields

__all__ = ["LEAD_DIM", "GridMismatch", "LeadFields", "align_to", "as_lead_fields",
           "with_lead_hours"]

LEAD_DIM = "lead_hours"


def as_lead_fields(source: LeadFields | xr.Dataset) -> LeadFields:
    """One lead's fields; a dataset may keep size-1 ``time``/``lead_hours`` dims."""
    if isinstance(source, LeadFields):
        return source
    singletons = [dim for dim in ("time", LEAD_DIM) if source.sizes.get(dim) == 1]
    return LeadFields.from_dataset(source.isel({dim: 0 for dim in singletons}))


def align_to(fields: LeadFields, target: Grid, name: str) -> LeadFields:
    """``fields`` in ``target``'s latitude order (views); raise if the grids differ.

    The comparison is :func:`~gaia.tasks.defined_tasks.weather.data.grid.check_forecast_grid`
    plus equal shapes: callers that accept a forecast without pole rows bring the truth to
    the forecast's grid first (``LeadFields.on_grid``).
    """
    try:
        check_forecast_grid(fields.grid, target)
    except GridMismatch as mismatch:
        raise GridMismatch(f"{name}: {mismatch}") from mismatch
    if fields.grid.shape != target.shape:
        raise GridMismatch(f"{name} has no pole rows: bring the truth to its grid first")
    return fields.on_grid(target)


def with_lead_hours(dataset: xr.Dataset, init_time: datetime | np.datetime64) -> xr.Dataset:
    """Replace a valid-time ``time`` dim by ``lead_hours`` (int hours since ``init_time``)."""
    init = pd.Timestamp(init_time)
    if init.tzinfo is not None:
        init = init.tz_convert("UTC").tz_localize(None)
    leads = (dataset["time"].to_numpy() - init.to_datetime64()) / np.timedelta64(1, "h")
    if not np.allclose(leads, np.round(leads)):
        raise ValueError("valid times are not whole hours after the init time")
    return dataset.assign_coords(time=leads.round().astype(int)).rename(time=LEAD_DIM)

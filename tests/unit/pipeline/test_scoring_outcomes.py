"""The one mapping from scoring errors to the queue's outcomes: the miner's faults fail at
once, transport trouble is retried, anything else passes through unchanged."""

from __future__ import annotations

import pytest

from gaia.jobs.outcomes import Invalid, Retry
from gaia.tasks.defined_tasks.weather.data.era5 import Era5NotAvailable
from gaia.tasks.defined_tasks.weather.data.gfs import GfsTransportError
from gaia.tasks.defined_tasks.weather.data.grid import GridMismatch
from gaia.tasks.defined_tasks.weather.data.zarr_http import ZarrHttpError
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    ForecastTransportError,
)
from gaia.tasks.defined_tasks.weather.pipeline.scoring_outcomes import as_outcomes


@pytest.mark.parametrize(("error", "outcome", "reason"), [
    (ForecastInvalid("chunk hash differs"), Invalid, "chunk hash differs"),
    (GridMismatch("latitude count differs"), Invalid, "forecast grid: latitude count differs"),
    (ForecastTransportError("miner unreachable"), Retry, "miner unreachable"),
    (GfsTransportError("503 from NOMADS"), Retry, "503 from NOMADS"),
    (Era5NotAvailable("not published"), Retry, "truth: not published"),
    (ZarrHttpError("timed out"), Retry, "reference store: timed out"),
])
def test_each_error_becomes_its_outcome(error, outcome, reason):
    with pytest.raises(outcome) as raised, as_outcomes():
        raise error
    assert type(raised.value) is outcome and raised.value.reason == reason
    assert raised.value.__cause__ is error


def test_other_errors_and_success_pass_through():
    with pytest.raises(KeyError), as_outcomes():
        raise KeyError("a bug, not an outcome")
    with as_outcomes():
        value = 1
    assert value == 1

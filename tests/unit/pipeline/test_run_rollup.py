"""The run status is a roll-up of its miners' states (docs/ARCHITECTURE.md, "State
machines")."""

import pytest

from gaia.tasks.defined_tasks.weather.states import MinerResponseStatus as S
from gaia.tasks.defined_tasks.weather.states import RunStatus as R
from gaia.tasks.defined_tasks.weather.states import rolled_up_run_status


@pytest.mark.parametrize(("statuses", "expected"), [
    ([S.CREATED, S.FETCH_INITIATED, S.INFERENCE_RUNNING], R.QUERYING_MINERS),
    ([S.INFERENCE_RUNNING, S.FORECAST_READY], R.SCORING_DAY1),
    ([S.INFERENCE_RUNNING, S.DAY1_SCORED], R.SCORING_DAY1),
    ([S.DAY1_SCORING, S.DAY1_SCORED, S.FAILED], R.SCORING_DAY1),
    ([S.DAY1_SCORED, S.FAILED], R.AWAITING_ERA5),
    ([S.DAY1_SCORED, S.ERA5_SCORING, S.ERA5_SCORED], R.SCORING_ERA5),
    ([S.ERA5_SCORED, S.FAILED], R.COMPLETED),
    ([S.FAILED, S.FAILED], R.COMPLETED),
])
def test_rolled_up_status(statuses: list[S], expected: R) -> None:
    assert rolled_up_run_status(statuses) is expected

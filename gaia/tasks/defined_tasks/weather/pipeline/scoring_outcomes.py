"""What the validator's scoring errors mean to the job queue: the one mapping.

A forecast that fails verification, or a grid that is not the run's, is the miner's fault
(``Invalid``: failed at once, no retry can change it); transport trouble with the miner,
GFS, ERA5 or the reference stores is the network's (``Retry``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from gaia.jobs.outcomes import Invalid, Retry
from gaia.tasks.defined_tasks.weather.data.era5 import Era5NotAvailable
from gaia.tasks.defined_tasks.weather.data.gfs import GfsTransportError
from gaia.tasks.defined_tasks.weather.data.grid import GridMismatch
from gaia.tasks.defined_tasks.weather.data.zarr_http import ZarrHttpError
from gaia.tasks.defined_tasks.weather.forecast_reader import (
    ForecastInvalid,
    ForecastTransportError,
)


@contextlib.contextmanager
def as_outcomes() -> Iterator[None]:
    """Turn verification and transport errors into the queue's outcomes."""
    try:
        yield
    except ForecastInvalid as error:
        raise Invalid(error.reason) from error
    except (ForecastTransportError, GfsTransportError) as error:
        raise Retry(str(error)) from error
    except Era5NotAvailable as error:
        raise Retry(f"truth: {error}") from error
    except ZarrHttpError as error:
        raise Retry(f"reference store: {error}") from error
    except GridMismatch as error:
        raise Invalid(f"forecast grid: {error}") from error

"""One lead's 2-D fields by (variable, level) on one grid: what readers hand to scoring.

The verified forecast reader, the reference cache and the scoring functions exchange this
instead of an xarray Dataset. A Dataset cannot hold ``t`` at 850 hPa beside ``z`` at
500 hPa without also holding (or faking) ``t`` at 500 and ``z`` at 850, and day-1 reads
exactly its six fields. The arrays are (latitude, longitude) float32, usually views of
memory-mapped cache files or of freshly decoded chunks: nothing here copies them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.data.grid import Grid, GridMismatch, check_forecast_grid

FieldKey = tuple[str, int | None]


@dataclass(frozen=True)
class LeadFields(Mapping[FieldKey, np.ndarray]):
    """``(variable, level) -> (latitude, longitude)`` arrays on ``grid`` (level None: surface)."""

    grid: Grid
    arrays: Mapping[FieldKey, np.ndarray]

    def __post_init__(self) -> None:
        wrong = [key for key, array in self.arrays.items() if array.shape != self.grid.shape]
        if wrong:
            raise GridMismatch(f"fields {wrong[:3]} are not of the grid's shape {self.grid.shape}")

    def __getitem__(self, key: FieldKey) -> np.ndarray:
        return self.arrays[key]

    def __iter__(self) -> Iterator[FieldKey]:
        return iter(self.arrays)

    def __len__(self) -> int:
        return len(self.arrays)

    @property
    def nbytes(self) -> int:
        return sum(array.nbytes for array in self.arrays.values())

    def select(self, keys: Iterable[FieldKey]) -> LeadFields:
        """Only ``keys`` (each must be present)."""
        return LeadFields(self.grid, {key: self.arrays[key] for key in keys})

    def on_grid(self, grid: Grid) -> LeadFields:
        """These fields on ``grid``: the same points, possibly in the other latitude order or
        without the pole rows ``self`` has. Views when the rows form a slice (every real case);
        anything else is a ``GridMismatch``."""
        if grid == self.grid:
            return self
        check_forecast_grid(grid, self.grid)
        rows = _row_slice(self.grid.lat, grid.lat)
        return LeadFields(grid, {key: array[rows] for key, array in self.arrays.items()})

    @classmethod
    def from_dataset(cls, dataset: xr.Dataset, keys: Iterable[FieldKey] | None = None) -> LeadFields:
        """The fields of a one-lead canonical dataset (dims ([level,] latitude, longitude));
        ``keys`` None takes every field it holds."""
        grid = Grid.from_dataset(dataset)
        wanted = list(keys) if keys is not None else _dataset_keys(dataset)
        values: dict[FieldKey, np.ndarray] = {}
        for variable, level in wanted:
            if variable not in dataset.data_vars:
                continue
            data = dataset[variable]
            if level is not None:
                if "level" not in data.dims or level not in data["level"].values:
                    continue
                data = data.sel(level=level)
            values[(variable, level)] = data.transpose("latitude", "longitude").to_numpy()
        return cls(grid, values)


def _dataset_keys(dataset: xr.Dataset) -> list[FieldKey]:
    keys: list[FieldKey] = []
    for name, data in dataset.data_vars.items():
        if "level" in data.dims:
            keys += [(str(name), int(level)) for level in data["level"].values]
        else:
            keys.append((str(name), None))
    return keys


def _row_slice(have: np.ndarray, want: np.ndarray) -> slice:
    """The slice of ``have``'s rows that gives ``want``'s latitudes in ``want``'s order."""
    nearest = [int(np.argmin(np.abs(have - lat))) for lat in (want[0], want[-1])]
    step = 1 if nearest[1] >= nearest[0] else -1
    stop: int | None = nearest[1] + step
    if stop is not None and stop < 0:
        stop = None
    rows = slice(nearest[0], stop, step)
    if not np.allclose(have[rows], want, atol=1e-6):
        raise GridMismatch("the target latitudes are not a contiguous run of this grid's rows")
    return rows

"""Microsoft Aurora behind the ``ForecastModel`` protocol (needs ``gaia-weather[aurora]``).

The two canonical input states become one ``aurora.Batch`` (history axis T0-6h, T0; the
static fields; latitudes north to south, longitudes from 0, as Aurora wants them), and
``aurora.rollout`` runs as a generator: one 6 h step per ``next``, so only the current
state sits on the device and each lead is handed to the store as soon as it exists.

Grid: Aurora's patches need ``n_lon`` divisible by the patch size (4) and ``n_lat`` to be a
multiple of it or one more (0.25 degree: 721 x 1440). In the second case Aurora drops the
last latitude row, the south pole; the adapter gives it back as the zonal mean of the row
next to it (a pole is one point, so one value per field; for u and v that is the mean of
the neighbouring ring's wind), so the forecast is on the input grid, as the protocol asks.
Specific humidity is clipped at 0 (the network can go slightly negative).

Precision: float32 weights; on CUDA Aurora's own autocast runs the backbone in bfloat16,
which is how its authors run it. Each step runs under ``torch.inference_mode`` in whichever
thread the miner calls ``next`` from.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aurora
import numpy as np
import torch
import xarray as xr

from gaia.tasks.defined_tasks.weather.inference.aurora_statics import STATIC_NAMES, StaticFields
from gaia.tasks.defined_tasks.weather.inference.aurora_variants import AuroraVariant
from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs, InvalidInputs
from gaia.tasks.defined_tasks.weather.variables import (
    LEAD_STEP_HOURS,
    LEVEL_VARIABLES,
    SURFACE_VARIABLES,
)

NON_NEGATIVE = frozenset({"q"})


def build_network(variant: AuroraVariant, device: torch.device) -> aurora.Aurora:
    """The variant's network with its initial (random) weights, in eval mode on ``device``."""
    network_class: type[aurora.Aurora] = getattr(aurora, variant.class_name)
    network = network_class(**variant.options, autocast=device.type == "cuda")
    return network.to(device).eval()


def save_random_checkpoint(path: Path, variant: AuroraVariant, seed: int = 0) -> Path:
    """Write a checkpoint of ``variant`` with random weights drawn from ``seed``."""
    torch.manual_seed(seed)
    network = build_network(variant, torch.device("cpu"))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save(network.state_dict(), partial)
    partial.replace(path)
    return path


def check_grid(shape: tuple[int, int], patch_size: int) -> None:
    n_lat, n_lon = shape
    if n_lon % patch_size or n_lat % patch_size not in (0, 1):
        raise InvalidInputs(
            f"Aurora needs longitudes divisible by {patch_size} and latitudes a multiple of "
            f"{patch_size} or one more; the inputs are {n_lat}x{n_lon}"
        )


def _check_leads(lead_hours: Sequence[int]) -> None:
    leads = list(lead_hours)
    steps_ok = all(lead > 0 and lead % LEAD_STEP_HOURS == 0 for lead in leads)
    if not steps_ok or leads != sorted(set(leads)):
        raise ValueError(f"Aurora's leads must be increasing multiples of {LEAD_STEP_HOURS} h, "
                         f"got {leads}")


def _python_time(when: np.datetime64) -> datetime:
    """Naive UTC, as Aurora's metadata expects."""
    seconds = when.astype("datetime64[s]").astype(np.int64)
    return datetime.fromtimestamp(int(seconds), tz=UTC).replace(tzinfo=None)


def _north_to_south(values: np.ndarray, flip: bool) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(values[..., ::-1, :] if flip else values))


def to_batch(inputs: ForecastInputs, statics: StaticFields) -> aurora.Batch:
    """The inputs as an ``aurora.Batch`` (batch size 1, history T0-6h then T0)."""
    missing = [n for n in (*SURFACE_VARIABLES, *LEVEL_VARIABLES) if n not in inputs.fields]
    if missing:
        raise InvalidInputs(f"Aurora needs every variable; the inputs lack {', '.join(missing)}")
    flip = not inputs.grid.descending
    lat = inputs.grid.lat[::-1] if flip else inputs.grid.lat
    return aurora.Batch(
        surf_vars={n: _north_to_south(inputs.fields[n], flip)[None] for n in SURFACE_VARIABLES},
        static_vars={n: _north_to_south(statics.fields[n], flip) for n in STATIC_NAMES},
        atmos_vars={n: _north_to_south(inputs.fields[n], flip)[None] for n in LEVEL_VARIABLES},
        metadata=aurora.Metadata(
            lat=torch.from_numpy(lat.copy()),
            lon=torch.from_numpy(inputs.grid.lon.copy()),
            time=(_python_time(inputs.init_time),),
            atmos_levels=inputs.levels,
        ),
    )


def _on_input_grid(values: torch.Tensor, n_lat: int, flip: bool) -> np.ndarray:
    """One predicted field (…, rows, lon) back on the inputs' rows, pole row restored."""
    array = values.float().cpu().numpy()
    if array.shape[-2] == n_lat - 1:
        pole = array[..., -1:, :].mean(axis=-1, keepdims=True)
        array = np.concatenate([array, np.broadcast_to(pole, array[..., -1:, :].shape)], axis=-2)
    return np.ascontiguousarray(array[..., ::-1, :] if flip else array, dtype=np.float32)


def from_prediction(prediction: aurora.Batch, inputs: ForecastInputs) -> dict[str, np.ndarray]:
    """The arrays of one predicted step, canonical ([level,] lat, lon) on the input grid."""
    n_lat, flip = inputs.grid.shape[0], not inputs.grid.descending
    arrays = {n: _on_input_grid(prediction.surf_vars[n][0, 0], n_lat, flip)
              for n in SURFACE_VARIABLES}
    arrays |= {n: _on_input_grid(prediction.atmos_vars[n][0, 0], n_lat, flip)
               for n in LEVEL_VARIABLES}
    for name in NON_NEGATIVE:
        np.maximum(arrays[name], 0.0, out=arrays[name])
    return arrays


@dataclass
class AuroraModel:
    """A loaded Aurora network; ``statics`` None means: take them from each cycle's GFS."""

    network: aurora.Aurora
    statics: StaticFields | None
    identity: Mapping[str, str] = field(default_factory=dict)
    name: str = "aurora"

    @property
    def needs_gfs_statics(self) -> bool:
        return self.statics is None

    def _statics_for(self, inputs: ForecastInputs) -> StaticFields:
        if self.statics is not None:
            return self.statics.on(inputs.grid)
        if set(STATIC_NAMES) - set(inputs.statics):
            raise InvalidInputs("Aurora needs static fields: none were given and the inputs "
                                "carry none from GFS")
        return StaticFields(inputs.grid, inputs.statics)

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        _check_leads(lead_hours)
        check_grid(inputs.grid.shape, self.network.patch_size)
        batch = to_batch(inputs, self._statics_for(inputs))
        return self._rollout(batch, inputs, list(lead_hours))

    def _rollout(
        self, batch: aurora.Batch, inputs: ForecastInputs, leads: list[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        wanted = set(leads)
        steps = aurora.rollout(self.network, batch, steps=leads[-1] // LEAD_STEP_HOURS)
        for step in range(1, leads[-1] // LEAD_STEP_HOURS + 1):
            with torch.inference_mode():
                prediction = next(steps)
                lead = step * LEAD_STEP_HOURS
                arrays = from_prediction(prediction, inputs) if lead in wanted else None
            del prediction
            if arrays is not None:
                yield lead, inputs.state_dataset(lead, arrays)


def describe(network: torch.nn.Module) -> dict[str, Any]:
    """Parameter count and device of a network, for logs and benchmarks."""
    parameters = list(network.parameters())
    return {"parameters": sum(p.numel() for p in parameters),
            "device": str(parameters[0].device)}

"""Built-in forecast models: no download, CPU only, vectorised numpy, float32.

- ``persistence``: the T0 state at every lead (the baseline every model must beat).
- ``spectral_advection``: each latitude row is split into zonal Fourier modes; each mode
  keeps rotating at the phase speed it showed between T0-6h and T0 (moving waves move
  on) and is damped toward the row's zonal mean, faster for shorter waves (small scales
  lose predictability first). The zonal mean itself persists.
- ``noisy_persistence``: persistence plus noise that grows with lead; deliberately poor,
  so a local net has a spread of skills to rank.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import xarray as xr

from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs
from gaia.tasks.defined_tasks.weather.variables import LEAD_STEP_HOURS

NON_NEGATIVE_VARIABLES = frozenset({"q"})


def _clip_physical(name: str, values: np.ndarray) -> np.ndarray:
    if name in NON_NEGATIVE_VARIABLES:
        np.maximum(values, 0.0, out=values)
    return values


def _check_leads(lead_hours: Sequence[int]) -> None:
    if any(lead <= 0 for lead in lead_hours):
        raise ValueError(f"lead hours must be positive, got {list(lead_hours)}")


@dataclass(frozen=True)
class Persistence:
    """The T0 state at every lead."""

    name: str = "persistence"

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        _check_leads(lead_hours)
        now = {name: values[1] for name, values in inputs.fields.items()}
        for lead in lead_hours:
            yield lead, inputs.state_dataset(lead, now)


def _anomaly_spread(state: np.ndarray) -> np.ndarray:
    """Standard deviation of the zonal anomaly, per level (broadcastable to ``state``)."""
    anomaly = state - state.mean(axis=-1, keepdims=True)
    return anomaly.std(axis=(-2, -1), keepdims=True).astype(np.float32)


@dataclass(frozen=True)
class NoisyPersistence:
    """Persistence plus Gaussian noise growing by ``noise_fraction_per_day`` x the spread of
    each level's zonal anomaly per day of lead."""

    noise_fraction_per_day: float = 0.3
    seed: int = 0
    name: str = "noisy_persistence"

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        _check_leads(lead_hours)
        rng = np.random.default_rng(self.seed)
        spread = {name: _anomaly_spread(values[1]) for name, values in inputs.fields.items()}
        for lead in lead_hours:
            scale = np.float32(self.noise_fraction_per_day * lead / 24.0)
            arrays = {}
            for name, values in inputs.fields.items():
                noise = rng.standard_normal(values[1].shape, dtype=np.float32)
                arrays[name] = _clip_physical(name, values[1] + noise * (scale * spread[name]))
            yield lead, inputs.state_dataset(lead, arrays)


class _SpectralField:
    """One variable's zonal spectrum, advanced in place by each mode's per-step factor."""

    def __init__(self, previous: np.ndarray, now: np.ndarray, decay_per_step: np.ndarray):
        self.n_lon = now.shape[-1]
        self.zonal_mean = now.mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
        self.spectrum = np.fft.rfft(now - self.zonal_mean, axis=-1)
        previous_spectrum = np.fft.rfft(previous - previous.mean(axis=-1, keepdims=True), axis=-1)
        phase = np.angle(self.spectrum * np.conj(previous_spectrum))
        del previous_spectrum
        damping = np.exp(-decay_per_step)
        self.step_factor = np.empty(phase.shape, dtype=np.complex64)
        self.step_factor.real = np.cos(phase) * damping
        self.step_factor.imag = np.sin(phase) * damping
        self.lead = 0

    def advance_to(self, lead_hours: int) -> np.ndarray:
        """The field at ``lead_hours`` (leads must come in increasing order)."""
        steps = (lead_hours - self.lead) / LEAD_STEP_HOURS
        if steps < 0:
            raise ValueError(f"leads must increase: {lead_hours} h after {self.lead} h")
        if steps == 1:
            self.spectrum *= self.step_factor
        else:
            self.spectrum *= self.step_factor ** np.float32(steps)
        self.lead = lead_hours
        field = np.fft.irfft(self.spectrum, n=self.n_lon, axis=-1)
        field += self.zonal_mean
        return field.astype(np.float32, copy=False)


@dataclass(frozen=True)
class SpectralAdvection:
    """Zonal Fourier modes keep their observed phase speed and decay toward the zonal mean.

    A mode of zonal wavenumber ``k`` decays with e-folding time
    ``tau_hours / (1 + k / k_half)`` hours; ``k = 0`` (the zonal mean) does not decay.
    Cost per lead: one complex multiply and one inverse real FFT per field.
    """

    tau_hours: float = 240.0
    k_half: float = 12.0
    name: str = "spectral_advection"

    def _decay_per_step(self, n_lon: int) -> np.ndarray:
        k = np.arange(n_lon // 2 + 1, dtype=np.float64)
        tau = self.tau_hours / (1.0 + k / self.k_half)
        return (LEAD_STEP_HOURS / tau).astype(np.float32)

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        _check_leads(lead_hours)
        decay = self._decay_per_step(inputs.grid.shape[1])
        fields = {
            name: _SpectralField(values[0], values[1], decay)
            for name, values in inputs.fields.items()
        }
        for lead in lead_hours:
            arrays = {
                name: _clip_physical(name, field.advance_to(lead)) for name, field in fields.items()
            }
            yield lead, inputs.state_dataset(lead, arrays)

"""Built-in forecast models: no download, CPU only, vectorised numpy, float32.

- ``persistence``: the T0 state at every lead (the baseline every model must beat).
- ``spectral_advection``: each latitude row is split into zonal Fourier modes; a mode that
  moved rigidly between T0-6h and T0 keeps moving at that phase speed, and every mode is
  damped toward the row's zonal mean, faster for shorter and for noise-like modes (small
  scales lose predictability first). The zonal mean itself persists.
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
NOISE_SHIFT_CELLS = 7
MIN_MOVING_WAVENUMBER = 2
STATISTICS_MAX_WAVENUMBER = 120


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
    """Persistence plus noise growing by ``noise_fraction_per_day`` x the spread of each
    level's zonal anomaly per day of lead. One noise pattern per variable (shared by its
    levels) is drawn once and shifted in longitude from lead to lead: cheap, and no skill."""

    noise_fraction_per_day: float = 0.3
    seed: int = 0
    name: str = "noisy_persistence"

    def forecast(
        self, inputs: ForecastInputs, lead_hours: Sequence[int]
    ) -> Iterator[tuple[int, xr.Dataset]]:
        _check_leads(lead_hours)
        rng = np.random.default_rng(self.seed)
        n_lon = inputs.grid.shape[1]
        periodic = {  # each pattern twice along longitude: any shifted window is a view
            name: np.tile(rng.standard_normal(inputs.grid.shape, dtype=np.float32), (1, 2))
            for name in inputs.fields
        }
        spread = {name: _anomaly_spread(values[1]) for name, values in inputs.fields.items()}
        for step, lead in enumerate(lead_hours):
            offset = (NOISE_SHIFT_CELLS * (step + 1)) % n_lon
            scale = np.float32(self.noise_fraction_per_day * lead / 24.0)
            arrays = {}
            for name, values in inputs.fields.items():
                noisy = np.empty_like(values[1])  # an explicit C-order output is ~10x faster
                np.multiply(spread[name] * scale, periodic[name][:, offset : offset + n_lon],
                            out=noisy)
                noisy += values[1]
                arrays[name] = _clip_physical(name, noisy)
            yield lead, inputs.state_dataset(lead, arrays)


def _latitude_box_sum(values: np.ndarray, half_width: int) -> np.ndarray:
    """Sum over a window of +/- ``half_width`` rows along the latitude axis (-2).

    Cumulative sums in double precision; the window is clipped at the first and last row.
    """
    wide = np.complex128 if np.iscomplexobj(values) else np.float64
    cumulative = np.cumsum(values, axis=-2, dtype=wide)
    head = np.zeros_like(cumulative[..., : half_width + 1, :])
    tail = np.repeat(cumulative[..., -1:, :], half_width, axis=-2)
    extended = np.concatenate([head, cumulative, tail], axis=-2)
    n = values.shape[-2]
    return extended[..., 2 * half_width + 1 : 2 * half_width + 1 + n, :] - extended[..., :n, :]


def _mode_statistics(
    now: np.ndarray, previous: np.ndarray, half_width: int, rigidity_power: float
) -> tuple[np.ndarray, np.ndarray]:
    """(phase change per step, coherence) per mode, from two spectra pooled over latitude.

    The coherence (0..1) says how well neighbouring rows agree on the phase change; the
    rigidity (1 when the amplitude stayed put) raised to ``rigidity_power`` scales the
    phase change, so only modes that translated rigidly are moved on.
    """
    cross = _latitude_box_sum(now * np.conj(previous), half_width)
    power_now, power_prev = np.abs(now) ** 2, np.abs(previous) ** 2
    total = np.maximum(_latitude_box_sum(power_now + power_prev, half_width), 1e-30)
    rigidity = 1 - _latitude_box_sum(np.abs(power_now - power_prev), half_width) / total
    coherence = np.minimum(2 * np.abs(cross) / total, 1.0)
    phase = np.angle(cross) * (np.clip(rigidity, 0, 1) ** rigidity_power)
    phase[..., :MIN_MOVING_WAVENUMBER] = 0  # the diurnal tide lives at k=1: keep its phase
    return phase.astype(np.float32), coherence.astype(np.float32)


class _SpectralField:
    """One variable's zonal spectrum, advanced in place by each mode's per-step factor.

    Modes up to ``STATISTICS_MAX_WAVENUMBER`` move and fade as ``_mode_statistics`` says;
    shorter ones stay in place and only decay. Zonal wavenumber 1 (the diurnal tide)
    never moves.
    """

    def __init__(
        self, previous: np.ndarray, now: np.ndarray, decay_per_step: np.ndarray, half_width: int,
        rigidity_power: float,
    ):
        self.n_lon = now.shape[-1]
        self.zonal_mean = now.mean(axis=-1, keepdims=True, dtype=np.float64).astype(np.float32)
        self.spectrum = np.fft.rfft(now - self.zonal_mean, axis=-1)
        k_stats = min(self.spectrum.shape[-1], STATISTICS_MAX_WAVENUMBER + 1)
        previous_spectrum = np.fft.rfft(
            previous - previous.mean(axis=-1, keepdims=True), n=self.n_lon, axis=-1
        )[..., :k_stats]
        phase, coherence = _mode_statistics(
            self.spectrum[..., :k_stats], previous_spectrum, half_width, rigidity_power
        )
        self.step_factor = np.broadcast_to(
            np.exp(-decay_per_step).astype(np.complex64), self.spectrum.shape
        ).copy()
        self.step_factor[..., :k_stats] *= coherence * (np.cos(phase) + 1j * np.sin(phase))
        self.lead = 0

    def advance_to(self, lead_hours: int) -> np.ndarray:
        """The field at ``lead_hours`` (leads must come in increasing order)."""
        steps = (lead_hours - self.lead) / LEAD_STEP_HOURS
        if steps < 0:
            raise ValueError(f"leads must increase: {lead_hours} h after {self.lead} h")
        if steps == 1:
            self.spectrum *= self.step_factor
        else:
            magnitude = np.abs(self.step_factor) ** np.float32(steps)
            self.spectrum *= magnitude * np.exp(1j * np.float32(steps) * np.angle(self.step_factor))
        self.lead = lead_hours
        field = np.fft.irfft(self.spectrum, n=self.n_lon, axis=-1)
        field += self.zonal_mean
        return field.astype(np.float32, copy=False)


@dataclass(frozen=True)
class SpectralAdvection:
    """Zonal Fourier modes keep their observed phase speed and decay toward the zonal mean.

    A mode of zonal wavenumber ``k`` decays with e-folding time
    ``tau_hours / (1 + k / k_half)`` hours, times its coherence per step; ``k = 0`` (the
    zonal mean) does not decay. Statistics are pooled over +/- ``pooling_deg`` of latitude.
    Set-up: two forward FFTs per field; per lead: one complex multiply and one inverse FFT.
    """

    tau_hours: float = 240.0
    k_half: float = 12.0
    pooling_deg: float = 5.0
    rigidity_power: float = 8.0
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
        half_width = round(self.pooling_deg / inputs.grid.resolution_deg)
        fields = {
            name: _SpectralField(values[0], values[1], decay, half_width, self.rigidity_power)
            for name, values in inputs.fields.items()
        }
        for lead in lead_hours:
            arrays = {
                name: _clip_physical(name, field.advance_to(lead)) for name, field in fields.items()
            }
            yield lead, inputs.state_dataset(lead, arrays)

"""Weather-shaped synthetic fields for the local archive (deterministic for a seed).

Truth = climatological mean state + anomaly + small noise.

* Mean state: temperature falling with height (lapse rate up to a tropopause) and with
  latitude, a seasonal cycle, a diurnal cycle of 2 m temperature; geopotential integrated
  hydrostatically from mean sea level pressure and temperature; a westerly jet peaking at
  250 hPa over the mid-latitudes with trade easterlies; humidity falling with height and
  latitude; subtropical highs and sub-polar lows at mean sea level.
* Anomaly: eastward-moving waves (zonal wavenumbers 1-8) whose amplitudes follow an
  Ornstein-Uhlenbeck process (decorrelation ~4 days), separately for temperature and
  surface pressure; geopotential follows hydrostatically, wind geostrophically, humidity by
  Clausius-Clapeyron. Persistence therefore has skill that fades with lead and loses to
  climatology at long leads.
* Forecasts: truth plus an error built the same way, growing with lead (10 % of the
  anomaly at analysis time), so GFS-like forecasts beat persistence at day 1.
* Statics (``synthetic_statics``): round continents at random places plus an Antarctic
  cap; orography 0 at sea rising to at most 4000 m inland; STATSGO soil classes over land
  (land ice on the cap), 14 (water) at sea.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import PRESSURE_LEVELS_HPA, is_level_variable

Fields = dict[str, np.ndarray]  # canonical name -> (lat, lon) or (level, lat, lon), float64

R_DRY = 287.05
OMEGA = 7.292e-5
EARTH_RADIUS = 6.371e6
N_MODES = 48
DECORRELATION_DAYS = 4.0
STEP_HOURS = 6


@dataclass(frozen=True)
class _Modes:
    """Wave modes: zonal wavenumber, latitude centre/width (radians), phase speed (rad/h)."""

    m: np.ndarray
    centre: np.ndarray
    width: np.ndarray
    omega: np.ndarray


def _draw_modes(rng: np.random.Generator) -> _Modes:
    m = rng.integers(1, 9, N_MODES)
    centre = np.deg2rad(rng.uniform(25, 70, N_MODES) * rng.choice([-1.0, 1.0], N_MODES))
    width = np.deg2rad(rng.uniform(10, 20, N_MODES))
    speed = np.deg2rad(rng.uniform(1, 4, N_MODES)) / 24.0  # degrees longitude per day
    return _Modes(m=m, centre=centre, width=width, omega=m * speed)


def _ou_amplitudes(rng: np.random.Generator, steps: int) -> np.ndarray:
    """Complex mode amplitudes (steps, N_MODES), unit variance, OU in time."""
    a = np.exp(-STEP_HOURS / 24.0 / DECORRELATION_DAYS)
    shocks = (rng.standard_normal((steps, N_MODES)) + 1j * rng.standard_normal((steps, N_MODES)))
    out = np.empty((steps, N_MODES), dtype=np.complex128)
    out[0] = shocks[0] / np.sqrt(2)
    scale = np.sqrt(1 - a * a) / np.sqrt(2)
    for i in range(1, steps):
        out[i] = a * out[i - 1] + scale * shocks[i]
    return out


class SyntheticWeather:
    """Truth, forecasts and climatology on ``grid`` for 6-hourly steps from ``start``."""

    def __init__(self, grid: Grid, start: datetime, steps: int, seed: int):
        self.grid, self.start, self.steps, self.seed = grid, start, steps, seed
        rng = np.random.default_rng(seed)
        self._modes_t, self._modes_p = _draw_modes(rng), _draw_modes(rng)
        self._amp_t, self._amp_p = _ou_amplitudes(rng, steps), _ou_amplitudes(rng, steps)
        self._phi = np.deg2rad(grid.lat)[:, None]
        self._lam = np.deg2rad(grid.lon)[None, :]
        self._p = np.asarray(PRESSURE_LEVELS_HPA, dtype=np.float64)
        norm_t = self._pattern(self._modes_t, np.ones(N_MODES), 0.0).std()
        norm_p = self._pattern(self._modes_p, np.ones(N_MODES), 0.0).std()
        self._norm = (max(norm_t, 1e-9), max(norm_p, 1e-9))

    # -- time helpers ---------------------------------------------------------------------
    def time_of(self, step: int) -> datetime:
        return self.start + timedelta(hours=STEP_HOURS * step)

    def step_of(self, when: datetime) -> int:
        hours = (when - self.start) / timedelta(hours=1)
        if hours % STEP_HOURS or not 0 <= hours < STEP_HOURS * self.steps:
            raise ValueError(f"{when.isoformat()} is not a step of the archive")
        return int(hours // STEP_HOURS)

    # -- mean state -----------------------------------------------------------------------
    def mean(self, dayofyear: int, hour: int) -> Fields:
        """The climatological mean state for a day of year (1..366) and UTC hour."""
        phi, lam = self._phi, self._lam
        season = np.cos(2 * np.pi * (dayofyear - 196) / 365.25)
        sin = np.sin(phi)
        t_surf = 300.0 - 48.0 * sin**2 + 10.0 * season * sin + 0 * lam
        t_trop = 200.0 + 18.0 * sin**2 + 0 * lam
        ratio = (self._p / 1000.0)[:, None, None]
        t = np.maximum(t_surf[None] * ratio**0.19, t_trop[None])
        lat_deg = np.abs(np.rad2deg(phi))
        msl = (101325.0 + 900 * np.exp(-(((lat_deg - 30) / 10) ** 2))
               - 1400 * np.exp(-(((lat_deg - 62) / 10) ** 2))
               + 400 * np.cos(2 * lam + 0.5) * np.sin(2 * phi) ** 2)
        jet = 8 + 27 * np.exp(-((np.log(self._p / 250.0) / 0.7) ** 2))
        u = (jet[:, None, None] * np.exp(-(((lat_deg - 38) / 12) ** 2))[None]
             - 6 * np.exp(-((np.rad2deg(phi) / 15) ** 2))[None] * ratio**2) + 0 * lam
        q_surf = (0.002 + 0.016 * np.cos(phi) ** 4) * (1 + 0.1 * season * sin) + 0 * lam
        q = np.maximum(q_surf[None] * ratio**3.2, 3e-6)
        diurnal = 4.0 * np.cos(2 * np.pi * (hour + np.rad2deg(lam) / 15 - 15) / 24) * np.cos(phi)
        return {
            "2t": t[-1] - 1.0 + diurnal, "10u": 0.7 * u[-1], "10v": np.zeros_like(msl),
            "msl": msl, "t": t, "u": u, "v": np.zeros_like(t), "q": q,
            "z": self._hydrostatic(msl, t),
        }

    def _hydrostatic(self, msl: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Geopotential on the levels from msl (z1000) and layer-mean temperatures."""
        z = np.empty_like(t)
        z[-1] = (msl - 100000.0) * 0.785
        for k in range(len(self._p) - 2, -1, -1):
            layer_t = 0.5 * (t[k] + t[k + 1])
            z[k] = z[k + 1] + R_DRY * layer_t * np.log(self._p[k + 1] / self._p[k])
        return z

    # -- anomalies ------------------------------------------------------------------------
    def _pattern(self, modes: _Modes, amp: np.ndarray, hours: float) -> np.ndarray:
        envelope = np.exp(-(((self._phi - modes.centre[None, :]) / modes.width) ** 2))
        waves = amp[:, None] * np.exp(1j * (modes.m[:, None] * self._lam[0][None, :]
                                            - (modes.omega * hours)[:, None]))
        return envelope @ waves.real

    def _anomaly(self, amp_t: np.ndarray, amp_p: np.ndarray, hours: float) -> Fields:
        psi_t = self._pattern(self._modes_t, amp_t, hours) / self._norm[0]
        psi_p = self._pattern(self._modes_p, amp_p, hours) / self._norm[1]
        shape = np.exp(-((np.log(self._p / 700.0) / 1.2) ** 2))[:, None, None]
        t = 3.5 * shape * psi_t[None]
        msl = 700.0 * psi_p
        z = self._hydrostatic(msl + 100000.0, t + 0.0)  # anomaly: t enters linearly
        u, v = self._geostrophic(z)
        return {"2t": 1.2 * t[-1], "10u": 0.7 * u[-1], "10v": 0.7 * v[-1], "msl": msl,
                "t": t, "u": u, "v": v, "z": z, "q": 0.07 * t}

    def _geostrophic(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        phi = self._phi
        f = 2 * OMEGA * np.where(phi >= 0, 1.0, -1.0) * np.maximum(np.abs(np.sin(phi)), 0.26)
        dphi = np.deg2rad(self.grid.lat[1] - self.grid.lat[0])
        dlam = np.deg2rad(self.grid.resolution_deg)
        dz_dphi = np.gradient(z, dphi, axis=1)
        dz_dlam = (np.roll(z, -1, axis=2) - np.roll(z, 1, axis=2)) / (2 * dlam)
        cos = np.maximum(np.cos(phi), 0.05)
        return -dz_dphi / (f * EARTH_RADIUS), dz_dlam / (f * EARTH_RADIUS * cos)

    def _noise(self, key: tuple[int, ...], scale: float) -> dict[str, float | np.ndarray]:
        rng = np.random.default_rng((self.seed, *key))
        shape = self.grid.shape
        level_shape = (len(self._p), *shape)
        sizes = {"2t": 0.5, "10u": 0.6, "10v": 0.6, "msl": 60.0, "t": 0.3, "u": 0.8,
                 "v": 0.8, "z": 40.0, "q": 0.0}
        return {name: scale * s * rng.standard_normal(level_shape if is_level_variable(name) else shape)
                for name, s in sizes.items()}

    def _state(self, when: datetime, anomaly: Fields, noise: dict) -> Fields:
        doy = when.timetuple().tm_yday
        base = self.mean(doy, when.hour)
        out = {name: base[name] + anomaly[name] + noise[name] for name in base}
        out["q"] = np.maximum(base["q"] * (1 + anomaly["q"]), 1e-7)
        return out

    # -- public ---------------------------------------------------------------------------
    def truth(self, step: int) -> Fields:
        """The true state at 6-hourly ``step`` (ERA5 in the archive)."""
        when = self.time_of(step)
        hours = step * STEP_HOURS
        anomaly = self._anomaly(self._amp_t[step], self._amp_p[step], hours)
        return self._state(when, anomaly, self._noise((1, step), 1.0))

    def forecast(self, cycle_step: int, lead_hours: int, truth: Fields | None = None) -> Fields:
        """A GFS-like forecast (f000 = analysis) from ``cycle_step`` at ``lead_hours``.

        ``truth`` may pass the already computed truth at the valid time.
        """
        step = cycle_step + lead_hours // STEP_HOURS
        truth = self.truth(step) if truth is None else truth
        growth = 0.1 + 1.3 * (1 - np.exp(-lead_hours / 120.0))
        rng = np.random.default_rng((self.seed, 2, cycle_step, lead_hours))
        amp = [(rng.standard_normal(N_MODES) + 1j * rng.standard_normal(N_MODES)) / np.sqrt(2)
               for _ in range(2)]
        error = self._anomaly(amp[0], amp[1], step * STEP_HOURS)
        out = {name: truth[name] + growth * error[name] for name in truth}
        out["q"] = np.maximum(truth["q"] * (1 + growth * error["q"]), 1e-7)
        return out


N_CONTINENTS = 7
LAND_SOIL_CLASSES = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 15)  # STATSGO, no water/ice
WATER_CLASS, LAND_ICE_CLASS = 14, 16
MAX_OROGRAPHY_M = 4000.0


@dataclass(frozen=True)
class StaticFields:
    """Constant fields in GFS's units: land cover 1/0, orography (m), STATSGO soil class."""

    land: np.ndarray
    orography_m: np.ndarray
    soil_class: np.ndarray


def synthetic_statics(grid: Grid, seed: int) -> StaticFields:
    """Deterministic statics on ``grid`` for ``seed`` (float64 (latitude, longitude))."""
    rng = np.random.default_rng((seed, 3))
    phi = np.deg2rad(grid.lat)[:, None]
    lam = np.deg2rad(grid.lon)[None, :]
    centre_phi = np.arcsin(rng.uniform(-0.8, 0.9, N_CONTINENTS))
    centre_lam = rng.uniform(0, 2 * np.pi, N_CONTINENTS)
    radius = np.deg2rad(rng.uniform(15, 40, N_CONTINENTS))
    height = np.zeros(grid.shape)
    for k in range(N_CONTINENTS):
        cos_d = (np.sin(phi) * np.sin(centre_phi[k])
                 + np.cos(phi) * np.cos(centre_phi[k]) * np.cos(lam - centre_lam[k]))
        inland = 1 - np.arccos(np.clip(cos_d, -1, 1)) / radius[k]
        height = np.maximum(height, inland)
    cap = np.clip((np.deg2rad(-68) - phi) / np.deg2rad(22), 0, 1) * np.ones_like(lam)
    land = (height > 0) | (cap > 0)
    orography = MAX_OROGRAPHY_M * np.clip(np.maximum(height, 0.75 * cap), 0, 1) * land
    boxes = rng.choice(LAND_SOIL_CLASSES, size=(12, 24))
    rows = np.minimum(((90 - grid.lat) // 15).astype(int), 11)[:, None]
    cols = ((grid.lon % 360) // 15).astype(int)[None, :]
    soil = np.where(cap > 0, LAND_ICE_CLASS, boxes[rows, cols])
    return StaticFields(land=land.astype(np.float64), orography_m=orography,
                        soil_class=np.where(land, soil, WATER_CLASS).astype(np.float64))

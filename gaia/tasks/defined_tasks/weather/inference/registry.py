"""Forecast models by name: ``get_model("spectral_advection", tau_hours=120)``.

``aurora`` takes the options of ``aurora_loader.load_aurora`` (variant, checkpoint, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from gaia.tasks.defined_tasks.weather.inference.base import ForecastModel
from gaia.tasks.defined_tasks.weather.inference.models import (
    NoisyPersistence,
    Persistence,
    SpectralAdvection,
)


def _aurora(**options: Any) -> ForecastModel:
    """Microsoft Aurora (the ``aurora`` extra), imported only when asked for."""
    from gaia.tasks.defined_tasks.weather.inference.aurora_loader import load_aurora

    return load_aurora(**options)


MODELS: dict[str, Callable[..., ForecastModel]] = {
    "persistence": Persistence,
    "spectral_advection": SpectralAdvection,
    "noisy_persistence": NoisyPersistence,
    "aurora": _aurora,
}


class UnknownModel(ValueError):
    """No model is registered under the requested name."""


def get_model(name: str, **options: Any) -> ForecastModel:
    """Build the model registered as ``name`` with its keyword ``options``."""
    factory = MODELS.get(name)
    if factory is None:
        raise UnknownModel(f"unknown forecast model {name!r}; known: {', '.join(sorted(MODELS))}")
    try:
        return factory(**options)
    except TypeError as error:
        raise ValueError(f"bad options for forecast model {name!r}: {error}") from error

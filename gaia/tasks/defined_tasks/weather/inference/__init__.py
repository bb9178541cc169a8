"""Forecast models for the miner: the ``ForecastModel`` protocol and the built-in models."""

from gaia.tasks.defined_tasks.weather.inference.base import (
    ForecastInputs,
    ForecastModel,
    InvalidInputs,
)
from gaia.tasks.defined_tasks.weather.inference.registry import MODELS, UnknownModel, get_model

__all__ = [
    "MODELS",
    "ForecastInputs",
    "ForecastModel",
    "InvalidInputs",
    "UnknownModel",
    "get_model",
]

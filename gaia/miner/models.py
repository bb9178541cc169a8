"""The miner's forecast model from its ``--model`` setting.

A registered name (``persistence``, ``spectral_advection`` ...) comes from the inference
registry; ``package.module:factory`` imports an operator's own model class or factory,
which is called without arguments and must follow the ``ForecastModel`` protocol.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from gaia.tasks.defined_tasks.weather.inference.base import ForecastModel
from gaia.tasks.defined_tasks.weather.inference.registry import get_model


class ModelLoadError(ValueError):
    """The model setting names nothing that can be built."""


def load_model(spec: str, options: Mapping[str, Any] | None = None) -> ForecastModel:
    """The model ``spec`` names; ``options`` go to a registered model's factory."""
    if ":" not in spec:
        return get_model(spec, **(options or {}))
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ModelLoadError(f"cannot load model {spec!r}: {exc}") from exc
    model = factory()
    if not callable(getattr(model, "forecast", None)):
        raise ModelLoadError(f"model {spec!r} has no forecast(inputs, lead_hours) method")
    return model

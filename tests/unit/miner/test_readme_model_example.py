"""The README's worked example of a custom model runs as the README says: loaded by
``--model my_models:make_model`` and yielding canonical leads on the input grid."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

from gaia.miner.models import load_model
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.inference.base import ForecastInputs
from gaia.tasks.defined_tasks.weather.inference.synthetic import synthetic_state

README = Path(__file__).resolve().parents[3] / "README.md"


def example_code() -> str:
    found = re.search(r"<!-- custom-model-example -->\n```python\n(.*?)```", README.read_text(),
                      re.DOTALL)
    assert found, "README has no custom-model example"
    return found.group(1)


def test_readme_custom_model_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "my_models.py").write_text(example_code())
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "my_models", raising=False)
    model = load_model("my_models:make_model")
    grid = Grid.regular(10.0)
    t0 = np.datetime64("2025-01-02T00:00")
    inputs = ForecastInputs.from_dataset(synthetic_state(grid, [t0 - np.timedelta64(6, "h"), t0]))
    states = dict(model.forecast(inputs, [6, 240]))
    assert list(states) == [6, 240] and model.name == "damped_persistence"
    late, now = states[240]["t"].values[0], inputs.fields["t"][1]
    zonal = now.mean(axis=-1, keepdims=True)
    # relaxed toward the zonal mean: closer to it at 240 h than the T0 state is
    assert np.abs(late - zonal).mean() < np.abs(now - zonal).mean()
    assert Grid.from_dataset(states[240]) == grid

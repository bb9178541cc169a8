"""GRIB2 encode/decode round trips and the checks on message bytes (in memory)."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from gaia.tasks.defined_tasks.weather.data.grib import (
    GfsDecodeError,
    GribEncoder,
    check_message_bytes,
    decode_message,
)
from gaia.tasks.defined_tasks.weather.data.grid import Grid
from gaia.tasks.defined_tasks.weather.variables import STANDARD_GRAVITY

REF = datetime(2025, 1, 1, 6, tzinfo=UTC)


@pytest.fixture
def encoder():  # noqa: ANN201
    enc = GribEncoder(Grid.regular(10.0))
    yield enc
    enc.close()


def _field(seed: int, low: float, high: float) -> np.ndarray:
    return np.random.default_rng(seed).uniform(low, high, Grid.regular(10.0).shape)


@pytest.mark.parametrize(("key", "low", "high"), [
    (("t", 850), 230.0, 300.0), (("2t", None), 220.0, 310.0), (("msl", None), 97000.0, 104000.0),
    (("q", 1000), 0.0, 0.02), (("10v", None), -20.0, 20.0),
])
def test_round_trip_within_packing_precision(encoder, key, low, high) -> None:  # noqa: ANN001
    values = _field(1, low, high)
    field = decode_message(encoder.encode(key, values, REF, 18), key)
    assert field.key == key and field.lead_hours == 18
    assert field.valid_time == datetime(2025, 1, 2, 0, tzinfo=UTC)
    assert field.grid == Grid.regular(10.0)
    np.testing.assert_allclose(field.values, values, atol=(high - low) / 2**15)


def test_geopotential_is_written_as_height_and_read_back_as_geopotential(encoder) -> None:  # noqa: ANN001
    z = _field(2, 5000.0, 5900.0) * STANDARD_GRAVITY
    message = encoder.encode(("z", 500), z, REF, 0)
    field = decode_message(message, ("z", 500))
    np.testing.assert_allclose(field.values, z, rtol=1e-5)


def test_ascending_grid_is_kept_in_source_order() -> None:
    grid = Grid.regular(10.0, descending=False)
    enc = GribEncoder(grid)
    values = np.arange(grid.shape[0], dtype=float)[:, None] * np.ones(grid.shape) + 250
    field = decode_message(enc.encode(("t", 500), values, REF, 0), ("t", 500))
    enc.close()
    assert field.grid.latitudes[0] == -90.0
    np.testing.assert_allclose(field.values[:, 0], values[:, 0], atol=1e-3)


def test_wrong_field_is_a_decode_error(encoder) -> None:  # noqa: ANN001
    message = encoder.encode(("t", 500), _field(3, 240, 260), REF, 0)
    with pytest.raises(GfsDecodeError, match=r"does not hold the field \('t', 850\)"):
        decode_message(message, ("t", 850), "f000 t850")


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda m: m[: len(m) // 2], "truncated or padded"),
    (lambda m: m + b"\0\0", "truncated or padded"),
    (lambda m: b"<html>" + m[6:], "does not start with a GRIB header"),
])
def test_damaged_bytes_are_refused(encoder, mutate, match) -> None:  # noqa: ANN001
    message = encoder.encode(("t", 500), _field(4, 240, 260), REF, 0)
    with pytest.raises(GfsDecodeError, match=match):
        check_message_bytes(mutate(message), "msg")

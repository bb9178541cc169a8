"""HTTP Range header parsing of the archive server."""

from __future__ import annotations

import pytest

from gaia.tasks.defined_tasks.weather.data.archive_server import RangeNotSatisfiable, parse_range


@pytest.mark.parametrize(
    ("header", "expected"),
    [("bytes=0-9", (0, 10)), ("bytes=5-", (5, 100)), ("bytes=-10", (90, 100)),
     ("bytes=95-200", (95, 100))],
)
def test_ranges(header: str, expected: tuple[int, int]) -> None:
    assert parse_range(header, 100) == expected


@pytest.mark.parametrize("header", ["bytes=100-", "items=0-1", "bytes=0-1,5-6", "bytes=7-3"])
def test_unsatisfiable(header: str) -> None:
    with pytest.raises(RangeNotSatisfiable):
        parse_range(header, 100)

"""The database a localnet subprocess runs on: made on the test server, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.fixtures.database import create_database, drop_database


@dataclass(frozen=True)
class LocalnetDatabase:
    name: str  # what the localnet's --database-name gets
    url: str


@pytest.fixture
def localnet_database() -> Iterator[LocalnetDatabase]:
    name = f"gaia_localnet_test_{uuid.uuid4().hex[:10]}"
    url = create_database(name)
    try:
        yield LocalnetDatabase(name, url)
    finally:
        drop_database(name)

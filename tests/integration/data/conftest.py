"""Archive fixtures for the data tests (until the lead registers tests.fixtures.archive)."""

from tests.fixtures.archive import (  # noqa: F401
    archive,
    archive_server,
    archive_urls,
    clean_archive_server,
)

"""``python -m gaia.validator.admin db …`` on a real, empty database: where it is, up, down
and up again, each answer one line; a wrong URL or a revision that does not exist is one
line on stderr and a non-zero exit, the database as it was."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from gaia.database import migrations
from gaia.database.local_postgres import free_port
from gaia.validator import admin


def _db(url: str, *command: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = admin.main(["--database-url", url, "db", *command])
    captured = capsys.readouterr()
    return code, captured.out.strip(), captured.err.strip()


def test_an_empty_database_goes_up_down_and_up_again(
    empty_database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    head = migrations.head_revision()
    assert _db(empty_database_url, "current", capsys=capsys) == (
        0, f"database at base, head is {head}: `{migrations.UPGRADE_COMMAND}`", "")
    assert _db(empty_database_url, "upgrade", capsys=capsys) == (
        0, f"database at {head} (head)", "")
    assert _db(empty_database_url, "downgrade", "0005", capsys=capsys) == (
        0, f"database at 0005, head is {head}: `{migrations.UPGRADE_COMMAND}`", "")
    assert _db(empty_database_url, "upgrade", "head", capsys=capsys)[1] == (
        f"database at {head} (head)")


def test_an_unknown_revision_is_refused_and_changes_nothing(
    empty_database_url: str, capsys: pytest.CaptureFixture[str],
) -> None:
    assert _db(empty_database_url, "upgrade", "0004", capsys=capsys)[0] == 0
    code, out, err = _db(empty_database_url, "upgrade", "9999", capsys=capsys)
    assert code == 2 and out == ""
    assert err.startswith("gaia.validator.admin: ") and "9999" in err and len(err.splitlines()) == 1
    assert _db(empty_database_url, "current", capsys=capsys)[1].startswith("database at 0004,")


def test_a_server_that_does_not_answer_is_one_line_and_exit_1(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = make_url(f"postgresql+asyncpg://gaia:secret@127.0.0.1:{free_port()}/gaia")
    code, out, err = _db(url.render_as_string(hide_password=False), "upgrade", capsys=capsys)
    assert (code, out) == (1, "")
    assert err.startswith("gaia.validator.admin: ") and len(err.splitlines()) == 1
    assert "secret" not in err

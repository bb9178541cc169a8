"""The pause state's words and the outcome of a held job (``gaia.validator.pause``); the flags."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gaia.cli import settings_from
from gaia.config import Settings
from gaia.jobs.outcomes import Invalid, NotReady
from gaia.validator.__main__ import FLAGS, build_parser
from gaia.validator.pause import PAUSE_RECHECK, PauseState, held

SINCE = datetime(2026, 11, 28, 17, 50, tzinfo=UTC)
DEADLINE = datetime(2026, 11, 28, 21, 30, tzinfo=UTC)


@pytest.mark.parametrize(("state", "words"), [
    (PauseState(None, "", False), "running"),
    (PauseState(SINCE, "", False), "paused since 2026-11-28 17:50 UTC"),
    (PauseState(SINCE, "upgrade", False), "paused since 2026-11-28 17:50 UTC (upgrade)"),
    (PauseState(None, "", True), "paused by validator.paused on this process"),
])
def test_describe(state: PauseState, words: str) -> None:
    assert state.describe() == words
    assert state.paused is (words != "running")


def test_a_held_job_waits_a_recheck_and_never_past_its_deadline() -> None:
    state = PauseState(SINCE, "upgrade", False)
    early = held(state, "fan-out", SINCE, DEADLINE)
    assert isinstance(early, NotReady) and early.until == SINCE + PAUSE_RECHECK
    almost = held(state, "fan-out", DEADLINE - PAUSE_RECHECK / 2, DEADLINE)
    assert isinstance(almost, NotReady) and almost.until == DEADLINE
    late = held(state, "fan-out", DEADLINE, DEADLINE)
    assert isinstance(late, Invalid)
    assert late.reason == ("fan-out held past the commit deadline 2026-11-28 21:30 UTC: "
                           "validator paused since 2026-11-28 17:50 UTC (upgrade)")


def test_the_flags_set_the_pause_and_the_fallback_uid() -> None:
    base = Settings()
    args = build_parser(base).parse_args(["--paused", "--fallback-weight-uid", "3"])
    settings = settings_from(args, FLAGS, base)
    assert settings.validator.paused is True and settings.validator.fallback_weight_uid == 3
    unset = settings_from(build_parser(base).parse_args([]), FLAGS, base)
    assert unset.validator.paused is False and unset.validator.fallback_weight_uid == 0

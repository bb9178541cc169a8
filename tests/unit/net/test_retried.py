"""The one retry loop itself: how many tries, the waits between them, what it says at the
end, and that an error an attempt raises is not retried."""

from __future__ import annotations

import pytest

from gaia.net import retrying
from gaia.net.retrying import RetriesExhausted, retried


class Attempts:
    """Fails with "busy N" until try ``succeeds_at`` (1-based), then gives "done"."""

    def __init__(self, succeeds_at: int | None) -> None:
        self.succeeds_at, self.tries = succeeds_at, 0

    async def __call__(self) -> tuple[str | None, str]:
        self.tries += 1
        return ("done", "") if self.tries == self.succeeds_at else (None, f"busy {self.tries}")


@pytest.fixture
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retrying.asyncio, "sleep", sleep)
    return slept


async def test_the_first_value_wins_after_the_delays_of_the_failed_tries(
    waits: list[float],
) -> None:
    attempt = Attempts(succeeds_at=3)
    assert await retried(attempt, tries=4, delay_s=lambda k: 10.0 * (k + 1)) == "done"
    assert attempt.tries == 3 and waits == [10.0, 20.0]


async def test_every_try_failing_names_the_last_reason_and_the_count(waits: list[float]) -> None:
    attempt = Attempts(succeeds_at=None)
    with pytest.raises(RetriesExhausted, match="^busy 3 after 3 tries$") as caught:
        await retried(attempt, tries=3, delay_s=lambda k: 0.5)
    assert (caught.value.last, caught.value.tries) == ("busy 3", 3)
    assert waits == [0.5, 0.5]  # no wait after the last try


async def test_an_error_the_attempt_raises_ends_the_loop_at_once(waits: list[float]) -> None:
    calls = 0

    async def refused() -> tuple[str | None, str]:
        nonlocal calls
        calls += 1
        raise PermissionError("not worth another try")

    with pytest.raises(PermissionError):
        await retried(refused, tries=5, delay_s=lambda k: 1.0)
    assert calls == 1 and waits == []


async def test_no_tries_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="tries must be at least 1"):
        await retried(Attempts(1), tries=0, delay_s=lambda k: 0.0)

"""Pure pieces of the miner: cycle window, rate limiter, validator standing, failure text."""

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from gaia.chain.client import AxonServed, Neuron
from gaia.miner.auth import RateLimiter
from gaia.miner.errors import CycleOutsideWindow
from gaia.miner.jobs import check_cycle_window
from gaia.miner.runner import describe_failure
from gaia.miner.validators import ValidatorRegistry
from gaia.tasks.defined_tasks.weather.protocol import MAX_MINER_ERROR_CHARS

NOW = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def test_cycle_window() -> None:
    window = timedelta(hours=48)
    check_cycle_window(NOW - timedelta(hours=2), NOW, window)
    check_cycle_window(NOW - window, NOW, window)
    with pytest.raises(CycleOutsideWindow, match="in the future"):
        check_cycle_window(NOW + timedelta(hours=4), NOW, window)
    with pytest.raises(CycleOutsideWindow, match="older than this miner's window of 48 h"):
        check_cycle_window(NOW - window - timedelta(hours=6), NOW, window)


def test_rate_limiter_slides_per_hotkey() -> None:
    clock = [100.0]
    limiter = RateLimiter(2, clock=lambda: clock[0])
    assert limiter.admit("a") and limiter.admit("a")
    assert not limiter.admit("a")
    assert limiter.admit("b")
    clock[0] += 59.0
    assert not limiter.admit("a")
    clock[0] += 1.5
    assert limiter.admit("a")


class ListChain:
    """A chain stand-in holding neurons in memory."""

    def __init__(self, neurons: Sequence[Neuron]) -> None:
        self.neurons = list(neurons)

    async def metagraph(self) -> list[Neuron]:
        return self.neurons

    async def set_weights(
        self, uids: Sequence[int], weights: Sequence[float], version_key: int
    ) -> str:
        raise AssertionError("the miner never sets weights")

    async def serve(self, ip: str, port: int) -> AxonServed:
        raise AssertionError("not used here")


def neuron(uid: int, hotkey: str, *, permit: bool, stake: float) -> Neuron:
    return Neuron(uid, hotkey, "cold", None, None, stake, permit)


async def test_validator_standing_from_metagraph_and_allowlist() -> None:
    chain = ListChain(
        [
            neuron(0, "validator", permit=True, stake=2000.0),
            neuron(1, "poor-validator", permit=True, stake=10.0),
            neuron(2, "miner", permit=False, stake=5000.0),
        ]
    )
    registry = ValidatorRegistry(chain, min_stake=1000.0, allowlist=["friend"])
    assert registry.refusal("validator") is not None  # nothing read yet
    await registry.refresh()
    assert registry.refusal("validator") is None
    assert registry.refusal("friend") is None
    assert "below the minimum" in str(registry.refusal("poor-validator"))
    assert "no validator permit" in str(registry.refusal("miner"))
    assert "not registered" in str(registry.refusal("stranger"))
    chain.neurons = chain.neurons[1:]
    await registry.refresh()
    assert "not registered" in str(registry.refusal("validator"))


def test_failure_description_names_the_type_and_is_bounded() -> None:
    assert describe_failure(ValueError("bad grid")) == "ValueError: bad grid"
    long = describe_failure(RuntimeError("x" * 5000))
    assert len(long) == MAX_MINER_ERROR_CHARS and long.endswith("...")

"""The miners table follows the metagraph, keyed by hotkey."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import async_sessionmaker

from gaia.chain.client import Neuron
from gaia.database.validator_schema import Miner
from gaia.validator.database import validator_database_manager as db
from gaia.validator.eligibility import Eligibility


def neuron(uid: int, hotkey: str, port: int | None = 8091) -> Neuron:
    return Neuron(uid, hotkey, f"cold-{hotkey}", "10.0.0.1" if port else None, port, 1.0, False)


async def _miners(factory: async_sessionmaker) -> dict[str, Miner]:
    async with factory() as session:
        return {m.hotkey: m for m in await session.scalars(select(Miner))}


async def _sync(factory: async_sessionmaker, neurons: list[Neuron]) -> tuple[int, int]:
    async with factory.begin() as session:
        return await db.sync_miners(session, neurons)


async def test_a_new_hotkey_on_a_uid_starts_fresh(session_factory: async_sessionmaker) -> None:
    await _sync(session_factory, [neuron(1, "5Old"), neuron(2, "5Stays")])
    before = await _miners(session_factory)
    assert await _sync(session_factory, [neuron(1, "5New"), neuron(2, "5Stays", port=9000)]) == (2, 1)
    after = await _miners(session_factory)
    assert set(after) == {"5New", "5Stays"}
    assert after["5New"].uid == 1 and after["5New"].registered_at >= before["5Old"].registered_at
    assert after["5Stays"].port == 9000
    assert after["5Stays"].registered_at == before["5Stays"].registered_at


async def test_a_hotkey_registered_again_on_another_uid_restarts_its_registration(
    session_factory: async_sessionmaker,
) -> None:
    await _sync(session_factory, [neuron(1, "5Mover"), neuron(2, "5Other")])
    first = (await _miners(session_factory))["5Mover"].registered_at
    async with session_factory.begin() as session:
        await session.execute(Miner.__table__.update().values(
            registered_at=datetime(2026, 1, 1, tzinfo=UTC)))
    await _sync(session_factory, [neuron(3, "5Mover"), neuron(2, "5Other")])
    miners = await _miners(session_factory)
    assert miners["5Mover"].uid == 3 and miners["5Mover"].registered_at >= first
    assert miners["5Other"].registered_at == datetime(2026, 1, 1, tzinfo=UTC)


async def test_deregistered_hotkeys_disappear_and_only_axons_are_eligible(
    session_factory: async_sessionmaker,
) -> None:
    await _sync(session_factory, [neuron(1, "5A"), neuron(2, "5B", port=None), neuron(3, "5Me")])
    await _sync(session_factory, [neuron(2, "5B", port=None), neuron(3, "5Me")])
    async with session_factory() as session:
        eligible = await db.eligible_miners(session, Eligibility("5Me", allow_private_axons=True))
    assert set(await _miners(session_factory)) == {"5B", "5Me"}
    assert eligible == []

"""What a worker may claim now: its job types in groups, each group's free places.

The types without a :class:`~gaia.jobs.registry.ConcurrencyLimit` form one group bounded
only by the worker's free handler slots; each limit group is bounded by its limit less the
jobs of the group the worker holds. A claim asks each group for its free places (one
statement, see ``sql.CYCLE``), so a full group never keeps the others from being claimed and
a job of a full group is never claimed to wait in a handler slot.

A group whose last claim found fewer ready jobs than it asked for is *drained*: it is not
asked again until a NOTIFY (a job became due), the idle poll (delayed jobs) or a job the
worker put back in the queue. A group that got all it asked for is not: when one of its
jobs finishes, the worker claims its next job at once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gaia.jobs.registry import JobRegistry


@dataclass(frozen=True, slots=True)
class ClaimGroup:
    name: str | None  # None: the types without a limit
    job_types: tuple[str, ...]
    limit: int | None


@dataclass(frozen=True, slots=True)
class Ask:
    group: ClaimGroup
    places: int


class ClaimGroups:
    def __init__(self, registry: JobRegistry) -> None:
        limits = registry.limits()
        members: dict[str | None, list[str]] = {}
        for spec in registry:
            members.setdefault(spec.limit.group if spec.limit else None, []).append(spec.job_type)
        self._groups = [
            ClaimGroup(name, tuple(sorted(types)), limits[name].limit if name else None)
            for name, types in sorted(members.items(), key=lambda item: item[0] or "")
        ]
        self._group_of = {t: g.name for g in self._groups for t in g.job_types}
        self._limited = any(g.limit is not None for g in self._groups)
        self._drained: set[str | None] = set()

    @property
    def any_drained(self) -> bool:
        return bool(self._drained)

    def forget_drained(self) -> None:
        """Jobs may be ready in every group again (NOTIFY, idle poll, a job put back)."""
        self._drained.clear()

    def asks(self, free_slots: int, held_types: Iterable[str]) -> list[Ask]:
        """Places to claim per group, for ``free_slots`` free handler slots and the types of
        the jobs held now; groups that are drained or full are left out."""
        if free_slots <= 0:
            return []
        held = Counter(self._group_of[t] for t in held_types) if self._limited else Counter()
        asks = []
        for group in self._groups:
            if group.name in self._drained:
                continue
            places = free_slots if group.limit is None else min(
                free_slots, group.limit - held[group.name])
            if places > 0:
                asks.append(Ask(group, places))
        return asks

    def observe(self, asks: Sequence[Ask], claimed_types: Sequence[str], want: int) -> None:
        """Note the groups a claim of up to ``want`` jobs found drained."""
        if len(claimed_types) >= want:
            return  # the claim's overall limit may have cut a group short
        got = Counter(self._group_of[t] for t in claimed_types)
        for ask in asks:
            if got[ask.group.name] < ask.places:
                self._drained.add(ask.group.name)


def claim_parameters(asks: Sequence[Ask]) -> tuple[list[str], list[int], list[int]]:
    """``sql.CYCLE``'s job types, each type's group number (1-based), each group's places."""
    job_types: list[str] = []
    numbers: list[int] = []
    for number, ask in enumerate(asks, start=1):
        job_types.extend(ask.group.job_types)
        numbers.extend([number] * len(ask.group.job_types))
    return job_types, numbers, [ask.places for ask in asks]

"""The handler timeout of the running job, and waits it does not count.

A job's timeout bounds the work of its handler. Time the handler spends queued for a shared
resource of the process (a scoring process busy with another job's task) is not its work:
inside :func:`not_counted` the running job's deadline stands still. The worker installs the
deadline for the handler's task; outside a job handler :func:`not_counted` does nothing.

Waits of one handler that overlap (tasks it started, each waiting) stop the deadline once:
it moves on when the last of them ends, by the time during which any was waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextvars import ContextVar


class JobDeadline:
    """An entered ``asyncio.timeout`` that waits can stop and restart."""

    def __init__(self, timeout: asyncio.Timeout) -> None:
        self._timeout = timeout
        self._waits = 0
        self._stopped_at = 0.0
        self._when: float | None = None
        self.active = True  # False once the handler's timeout block has ended

    def _movable(self) -> bool:
        return self.active and not self._timeout.expired()

    def stop(self) -> None:
        if self._waits == 0 and self._movable():
            self._stopped_at = asyncio.get_running_loop().time()
            self._when = self._timeout.when()
            self._timeout.reschedule(None)
        self._waits += 1

    def restart(self) -> None:
        self._waits -= 1
        if self._waits == 0 and self._when is not None and self._movable():
            waited = asyncio.get_running_loop().time() - self._stopped_at
            self._timeout.reschedule(self._when + waited)
            self._when = None


_running: ContextVar[JobDeadline | None] = ContextVar("gaia_job_deadline", default=None)


@contextlib.contextmanager
def counting(timeout: asyncio.Timeout) -> Iterator[None]:
    """Make ``timeout`` (entered) the deadline :func:`not_counted` stops, in this context."""
    deadline = JobDeadline(timeout)
    token = _running.set(deadline)
    try:
        yield
    finally:
        deadline.active = False  # tasks the handler left behind still see it
        _running.reset(token)


@contextlib.asynccontextmanager
async def not_counted() -> AsyncIterator[None]:
    """Time inside does not count against the running job's handler timeout."""
    deadline = _running.get()
    if deadline is None:
        yield
        return
    deadline.stop()
    try:
        yield
    finally:
        deadline.restart()

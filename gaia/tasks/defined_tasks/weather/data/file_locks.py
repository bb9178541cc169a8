"""``flock`` on lock files that a prune may unlink: shared by the caches that several
processes read while one of them evicts (the GFS message cache, the reference cache)."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def lock_fd(path: Path, flags: int) -> int | None:
    """An fd holding ``flock(flags)`` on ``path`` (None when ``LOCK_NB`` and taken).

    Rechecks after locking that ``path`` is still the locked file: a prune unlinks the lock
    files of the entries it evicts, and a lock on an unlinked file guards nothing."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, flags)
        except BlockingIOError:
            os.close(fd)
            return None
        try:
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


@contextmanager
def held(path: Path, flags: int) -> Iterator[None]:
    """Hold a blocking ``flock(flags)`` on ``path`` for the ``with`` block."""
    fd = lock_fd(path, flags)
    assert fd is not None, "a blocking flock returned without the lock"
    try:
        yield
    finally:
        os.close(fd)

"""A small pool of spawn processes for heavy scoring: one task per process at a time.

Not :class:`concurrent.futures.ProcessPoolExecutor`, because a hostile forecast can kill
the process that reads it (a decompression bomb ends in the OOM killer's SIGKILL) and
there one dead process marks the whole executor broken: every task in flight fails and
every later one raises ``BrokenProcessPool`` until the validator restarts. A task whose
caller gave up also keeps running there, in front of the next miner's task. Here each
slot owns one process:

- a task waits for a free slot first; that wait does not count against the calling job's
  handler timeout (:func:`gaia.jobs.deadline.not_counted`), and the task's own deadline
  starts when its process starts the task;
- a task carries its deadline into its process as a real-time interval timer, whose
  SIGALRM ends the process even inside C code; a caller that gives up first (cancelled)
  kills the process itself. Either way the slot starts a fresh process at once;
- a process that died (SIGKILL, OOM, a crash) is replaced and its task fails with
  :class:`ProcessDied`; tasks on the other slots never notice;
- every process asks the kernel to kill it when the validator dies, so a SIGKILLed
  validator leaves no scoring processes behind.

Processes are started from the event loop's thread on purpose: Linux sends the parent-death
signal when the *thread* that started the child ends, and the loop's thread lives as long
as the pool.
"""

from __future__ import annotations

import asyncio
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any, TypeVar

from gaia.jobs.deadline import not_counted

T = TypeVar("T")

PR_SET_PDEATHSIG = 1
KILL_GRACE_S = 30.0
"""How long past its deadline the parent waits for a task's own timer before killing it. The
task's timer starts once its code is imported in the process; this also covers the import."""
STOP_WAIT_S = 5.0
SCORING_NICENESS = 10
"""Added to a scoring process's nice value (``os.nice``): below the worker's event loop."""
PARENT_POLL_S = 1.0
MEMORY_PER_PROCESS_BYTES = 2 * 1024**3
"""What one scoring process is budgeted: a task peaks at about 1.5 GB (one ERA5 lead at
0.25 degrees), with headroom for the interpreter and the libraries."""
MEMINFO = Path("/proc/meminfo")


def machine_processes(meminfo: Path = MEMINFO) -> int:
    """How many scoring processes this machine can give: one per usable CPU but one (left to
    the worker's event loop), at most one per :data:`MEMORY_PER_PROCESS_BYTES` of available
    memory, and at least one. Usable CPUs are this process's affinity (a container's
    cpuset); available memory is ``MemAvailable`` (the kernel's estimate of what can be
    allocated without swapping), read at the moment of the call; where the kernel does not
    tell it (no ``/proc/meminfo``), only the CPUs count."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    by_cpu = (cpus or 1) - 1
    available = _available_bytes(meminfo)
    by_memory = by_cpu if available is None else available // MEMORY_PER_PROCESS_BYTES
    return max(1, min(by_cpu, by_memory))


def _available_bytes(meminfo: Path) -> int | None:
    if not meminfo.exists():
        return None
    for line in meminfo.read_text().splitlines():
        name, _, value = line.partition(":")
        if name == "MemAvailable":
            amount, unit = value.split()
            if unit != "kB":
                raise ValueError(f"unexpected unit {unit!r} of MemAvailable in {meminfo}")
            return int(amount) * 1024
    raise ValueError(f"no MemAvailable line in {meminfo}")


class ProcessDied(Exception):
    """The task's process ended before it answered (SIGKILL, the OOM killer, a crash)."""

    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"scoring process ended before answering ({_describe_exit(exitcode)})")
        self.exitcode = exitcode


class DeadlinePassed(Exception):
    """The task ran past its deadline; its process was killed and replaced."""

    def __init__(self, deadline_s: float) -> None:
        super().__init__(f"scoring task ran past its deadline of {deadline_s:g} s")
        self.deadline_s = deadline_s


class ScoringPool:
    """``processes`` slots; :meth:`run` waits for a free one."""

    def __init__(self, processes: int) -> None:
        if processes < 1:
            raise ValueError(f"a scoring pool needs at least one process, got {processes}")
        self._slots = [_Slot() for _ in range(processes)]
        self._idle: asyncio.Queue[_Slot] = asyncio.Queue()
        for slot in self._slots:
            self._idle.put_nowait(slot)

    async def run(self, fn: Callable[..., T], *args: Any, deadline_s: float | None) -> T:
        """``fn(*args)`` in a scoring process, ended after ``deadline_s`` (None: no deadline).

        ``fn`` and its arguments and result must pickle, and ``fn`` must be importable by
        name (a module-level function). Raises ``fn``'s own exception,
        :class:`DeadlinePassed` or :class:`ProcessDied`.
        """
        async with not_counted():
            slot = await self._idle.get()
        try:
            return await slot.run(fn, args, deadline_s)
        finally:
            self._idle.put_nowait(slot)

    def close(self) -> None:
        for slot in self._slots:
            slot.stop()


class _Slot:
    def __init__(self) -> None:
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None

    async def run(self, fn: Callable[..., T], args: Sequence[Any], deadline_s: float | None) -> T:
        process, conn = self._started()
        grace = None if deadline_s is None else deadline_s + KILL_GRACE_S
        try:
            conn.send((fn, tuple(args), deadline_s))
            async with asyncio.timeout(grace):
                await _readable(conn)
            reply = conn.recv()
        except (EOFError, BrokenPipeError, ConnectionResetError):
            self._replace(kill=False)
            if process.exitcode == -signal.SIGALRM and deadline_s is not None:
                raise DeadlinePassed(deadline_s) from None
            raise ProcessDied(process.exitcode) from None
        except TimeoutError:
            self._replace(kill=True)
            assert deadline_s is not None
            raise DeadlinePassed(deadline_s) from None
        except BaseException:
            # Cancelled (the job's own timeout, shutdown): the task must not keep the process.
            self._replace(kill=True)
            raise
        return _unwrap(reply)

    def _started(self) -> tuple[BaseProcess, Connection]:
        if self._process is None or self._conn is None:
            self._start()
        elif not self._process.is_alive():  # died while idle: not the next task's doing
            self._replace(kill=False)
        assert self._process is not None and self._conn is not None
        return self._process, self._conn

    def _start(self) -> None:
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(target=_serve, args=(child_end, os.getpid()), daemon=True,
                                  name="gaia-scoring")
        process.start()
        child_end.close()  # so the parent sees EOF when the child dies
        self._process, self._conn = process, parent_end

    def _replace(self, *, kill: bool) -> None:
        self._end(kill=kill)
        self._start()

    def _end(self, *, kill: bool) -> None:
        process, conn = self._process, self._conn
        self._process = self._conn = None
        if process is None or conn is None:
            return
        if kill:
            process.kill()
        process.join()
        if not conn.closed:
            conn.close()

    def stop(self) -> None:
        """End the process: an idle one exits when its pipe closes; kill it after
        :data:`STOP_WAIT_S` if it does not."""
        process, conn = self._process, self._conn
        if process is None or conn is None:
            return
        conn.close()
        process.join(STOP_WAIT_S)
        self._end(kill=process.is_alive())


async def _readable(conn: Connection) -> None:
    """Wait without blocking the loop until ``conn`` has data or its other end closed."""
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:  # called on every loop turn until removed: set only once
        if not ready.done():
            ready.set_result(None)

    fd = conn.fileno()
    loop.add_reader(fd, wake)
    try:
        await ready
    finally:
        loop.remove_reader(fd)


def _unwrap(reply: tuple[Any, ...]) -> Any:
    if reply[0] == "ok":
        return reply[1]
    _, error, remote_traceback = reply
    error.add_note(f"in the scoring process:\n{remote_traceback}")
    raise error


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "still running"
    if exitcode < 0:
        return f"killed by {signal.Signals(-exitcode).name}"
    return f"exit status {exitcode}"


# --- inside the scoring process -----------------------------------------------------------


def _serve(conn: Connection, parent_pid: int) -> None:
    """A scoring process: run tasks from ``conn`` until told to stop or the parent is gone."""
    _die_with_parent(parent_pid)
    # Scoring is throughput work; the worker's event loop answers miners and commits their
    # forecasts against deadlines. On a host with fewer spare cores than scoring processes
    # the loop must win the CPU, so scoring runs at a lower priority.
    os.nice(SCORING_NICENESS)
    # Ctrl-C reaches the whole process group; the validator decides how its tasks end.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    while True:
        try:
            message = conn.recv()
        except EOFError:
            return
        if message is None:
            return
        fn, args, deadline_s = message
        conn.send(_run_task(fn, args, deadline_s))


def _run_task(fn: Callable[..., Any], args: tuple[Any, ...], deadline_s: float | None) -> tuple:
    if deadline_s is not None:
        signal.setitimer(signal.ITIMER_REAL, deadline_s)
    try:
        return ("ok", fn(*args))
    except Exception as error:  # noqa: BLE001 - handed to the caller, who raises it
        return ("error", _picklable(error), traceback.format_exc())
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def _picklable(error: Exception) -> Exception:
    """``error`` itself, or a RuntimeError naming it when it does not survive pickling."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:  # noqa: BLE001 - any pickling failure gets the same stand-in
        return RuntimeError(f"{type(error).__qualname__}: {error}")
    return error


def _die_with_parent(parent_pid: int) -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    else:
        threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    if os.getppid() != parent_pid:  # the parent died before the kernel was told to watch it
        os._exit(1)


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(PARENT_POLL_S)
    os._exit(1)

"""Run a parser in a child process with a memory limit and a hard wall-clock timeout.

Issue 20 point 5: a workbook that passes every byte cap can still cost gigabytes and minutes
inside openpyxl, and a parse in the web worker's own process costs every other request of that
worker (its memory, its GIL). :func:`run_bounded` runs a picklable function in a child forked
from a small *forkserver* (never from the web worker itself: no threads or database connections
are copied), which first limits its own address space (``RLIMIT_AS``: what it has at start plus
``memory_bytes``), its CPU seconds, and lowers its priority; the parent waits on a pipe, with no
lock held and no GIL spent, and kills the child when ``seconds`` have passed. The parent never
holds more than the file's bytes and the plain result.

Outcomes: the function's return value, or :class:`SandboxRefused` (the clerk's sentence and a
code) when the child ran out of memory, ran past the time or died; any other exception in the
child is raised again in the parent (as :class:`SandboxError` when it does not pickle).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import resource
import signal
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, TypeVar

log = logging.getLogger(__name__)

__all__ = ["SandboxError", "SandboxRefused", "run_bounded"]

T = TypeVar("T")

#: Parse children at once per process: N concurrent uploads may not cost N times the memory
#: limit; the others wait for a slot (at most their own time bound).
CONCURRENT = 2
_slots = threading.BoundedSemaphore(CONCURRENT)

#: Modules the forkserver imports once, so that each child starts in milliseconds.
PRELOAD = ["workflow.formats.ledger", "workflow.formats.xlsx_guard", "openpyxl"]
_context: Any = None


class SandboxRefused(Exception):
    """The child ran out of memory or time: ``message`` is for the clerk, ``code`` the refusal's."""

    def __init__(self, message: str, code: str = "import.file_too_costly") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SandboxError(Exception):
    """The child raised something other than running out of memory (a bug, not the file)."""


def _ctx() -> Any:
    global _context
    if _context is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        _context = ctx
    return _context


def _address_space() -> int:
    """This process' virtual size in bytes (0 where /proc is missing)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


def _child(conn: Connection, memory_bytes: int, seconds: float, func: Callable[..., Any],
           args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        limit = _address_space() + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        cpu = int(seconds) + 2
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
        os.nice(5)  # the other users' requests first
        try:
            outcome: tuple[str, Any] = ("ok", func(*args, **kwargs))
        except MemoryError:
            outcome = ("memory", None)
        except Exception as exc:  # noqa: BLE001 - raised again in the parent
            outcome = ("error", exc)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        try:
            conn.send((*outcome, peak))
        except (TypeError, AttributeError, pickle.PicklingError):  # an exception that does not pickle
            conn.send(("error", SandboxError(f"{type(outcome[1]).__name__}: {outcome[1]}"), peak))
    except MemoryError:
        with contextlib.suppress(Exception):  # else the parent sees the child die
            conn.send(("memory", None, 0))
    finally:
        conn.close()


def _memory_refusal(memory_bytes: int) -> SandboxRefused:
    return SandboxRefused(f"文件解析所需内存超过 {memory_bytes // 1024 // 1024} MB 上限：请删除多余的行列或工作表，"
                          "或拆分为多个较小的文件后分别导入")


def run_bounded(func: Callable[..., T], *args: Any, memory_bytes: int, seconds: float,
                timeout_message: str, **kwargs: Any) -> T:
    """``func(*args, **kwargs)`` in a bounded child process (see the module docstring).

    At most :data:`CONCURRENT` children run at once; a call waits up to ``seconds`` for a slot.

    Raises:
        SandboxRefused: out of memory (``memory_bytes`` over the child's start), past
            ``seconds`` (then ``timeout_message``), the child died, or no slot came free
            (``import.busy``).
        SandboxError: the function raised another exception.
    """
    if not _slots.acquire(timeout=seconds):
        raise SandboxRefused("服务器正在解析其他文件，请稍后再导入", code="import.busy")
    try:
        return _run(func, args, kwargs, memory_bytes=memory_bytes, seconds=seconds,
                    timeout_message=timeout_message)
    finally:
        _slots.release()


def _run(func: Callable[..., T], args: tuple[Any, ...], kwargs: dict[str, Any], *, memory_bytes: int,
         seconds: float, timeout_message: str) -> T:
    ctx = _ctx()
    receiver, sender = ctx.Pipe(duplex=False)
    process = ctx.Process(target=_child, args=(sender, memory_bytes, seconds, func, args, kwargs),
                          daemon=True, name="bangfu-parse")
    started = time.monotonic()
    process.start()
    sender.close()
    outcome: tuple[str, Any, int] | None = None
    try:
        if receiver.poll(max(0.0, seconds - (time.monotonic() - started))):
            try:
                outcome = receiver.recv()
            except (EOFError, OSError):
                outcome = None  # died before (or while) answering
        else:
            log.warning("parse child %s killed after %.0f s", process.pid, seconds)
            process.kill()
            raise SandboxRefused(timeout_message)
    finally:
        receiver.close()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
    if outcome is None:
        log.warning("parse child %s died (exit code %s)", process.pid, process.exitcode)
        if process.exitcode in (-signal.SIGXCPU, -signal.SIGKILL) and time.monotonic() - started >= seconds:
            raise SandboxRefused(timeout_message)
        raise _memory_refusal(memory_bytes)
    kind, value, peak = outcome
    log.info("parse child %s: %s in %.2f s, peak RSS %.1f MB", process.pid, kind, time.monotonic() - started,
             peak / 1024, extra={"child_peak_kb": peak, "child_seconds": time.monotonic() - started})
    if kind == "ok":
        return value  # type: ignore[no-any-return]
    if kind == "memory":
        raise _memory_refusal(memory_bytes)
    raise value

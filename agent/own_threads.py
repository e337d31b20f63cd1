"""Threads the agent starts beside its pipeline (the Lambda shutdown watcher): never sampled.

The profiler's sampler skips its own thread and the scheduler's; a module that starts another
long-lived thread registers it here so that it neither shows in profiles nor keeps the sampler
from its fast path for a process whose main thread is alone.
"""

from __future__ import annotations

import threading

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Set

__all__ = ["generation", "idents", "native_ids", "registered", "start"]

_IDENTS: Set[Optional[int]] = set()
_THREADS: List[threading.Thread] = []
_GENERATION = [0]
_CHANGES = threading.Lock()  # a thread's end and its start's bookkeeping, in one order


def start(thread: threading.Thread) -> None:
    """Start ``thread`` (a daemon) as one of the agent's own threads."""
    thread.daemon = True
    body = thread.run

    ended: List[bool] = []

    def run() -> None:
        ident = threading.get_ident()
        with _CHANGES:
            _add(ident)  # before its first step: a sample may come before start() returns
        try:
            body()
        finally:
            # The identifier goes back to the pool: a thread of the program started later may get it,
            # and must be sampled.
            with _CHANGES:
                ended.append(True)
                _remove(ident)

    thread.run = run  # type: ignore[method-assign]
    thread.start()
    with _CHANGES:
        if not ended:  # start() may return before run() begins
            _add(thread.ident)
    _THREADS[:] = [t for t in _THREADS if t.is_alive()] + [thread]


def _add(ident: Optional[int]) -> None:
    _IDENTS.add(ident)
    # A thread table refreshed before this must look again (see ThreadTable.due).
    _GENERATION[0] += 1


def _remove(ident: Optional[int]) -> None:
    _IDENTS.discard(ident)
    _GENERATION[0] += 1


def generation() -> int:
    """A number that changes each time a thread is added (see :meth:`ThreadTable.due`)."""
    return _GENERATION[0]


def registered() -> Set[Optional[int]]:
    """The identifiers of the threads added whose body has not returned, taking no lock (for the
    SIGPROF handler)."""
    return set(_IDENTS)


def idents() -> Set[Optional[int]]:
    """The identifiers of the agent's own threads that are alive."""
    alive = {thread.ident for thread in threading.enumerate()}
    return _IDENTS & alive


def native_ids() -> List[Optional[int]]:
    """The kernel thread ids of the agent's own threads that are alive (their CPU is the agent's)."""
    return [thread.native_id for thread in tuple(_THREADS) if thread.is_alive()]

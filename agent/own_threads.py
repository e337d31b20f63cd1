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
    from typing import Optional, Set

__all__ = ["idents", "start"]

_IDENTS: Set[Optional[int]] = set()


def start(thread: threading.Thread) -> None:
    """Start ``thread`` (a daemon) as one of the agent's own threads."""
    thread.daemon = True
    thread.start()
    _IDENTS.add(thread.ident)


def idents() -> Set[Optional[int]]:
    """The identifiers of the agent's own threads that are alive."""
    alive = {thread.ident for thread in threading.enumerate()}
    return _IDENTS & alive

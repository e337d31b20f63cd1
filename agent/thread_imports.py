"""The modules the agent's own threads import, loaded where a fork waits for them.

A thread that imports a module holds that module's import lock until the import ends. Were the
program to fork at that moment, the child would inherit the lock held by a thread it does not
have, and its agent would wait for ever at its next use of the module (at the latest when the
child flushes its profile at exit). Importing them on the thread that starts the agent would put
their milliseconds on every cold start, so each agent thread imports what it needs first, before
its first tick, inside :func:`load`; a fork waits (at most :data:`FORK_WAIT_S`) until no such
import is under way.
"""

from __future__ import annotations

# Loaded here, on the thread that starts the agent, before any agent thread imports: CPython 3.13's
# collections/abc.py replaces itself in sys.modules while it runs, and a thread that imports it at
# the same moment as another (our threads' first imports against the program's `import socket`)
# may get the empty module being replaced: "cannot import name 'Mapping' from 'collections.abc'"
# in the program (2-6 of 40 starts of `greenflame run` on 3.13.0 here). Once loaded, it is never
# imported again. Elsewhere it is loaded at start-up already.
import collections.abc  # noqa: F401
import os
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional

#: What the sampler thread uses: ``dis`` reads call sites (:mod:`.idle`), ``logging`` the guard's,
#: ``ctypes`` the wall-clock timer (:mod:`.wall_timer`).
SAMPLER = ("ctypes", "dis", "logging")
#: What the scheduler thread's reports use, before the exporters' own (``Exporter.thread_imports``).
REPORTS = ("gzip", "json", "logging", "re", "uuid")
#: The longest a fork waits for an agent thread's imports (a stuck import must not stop a fork).
FORK_WAIT_S = 5.0

_lock = threading.Lock()
_loading: Optional[int] = None  # the ident of the thread inside load()
_held_for_fork = False
_hooks_installed = False


def load(names: Iterable[str]) -> None:
    """Import ``names`` on this thread, holding off any fork until done; unknown modules are skipped
    (an export that needs one reports its absence itself)."""
    global _loading
    install_fork_hooks()
    with _lock:
        _loading = threading.get_ident()
        try:
            for name in names:
                try:
                    __import__(name)
                except ImportError:
                    pass
        finally:
            _loading = None


def loading_thread() -> Optional[int]:
    """The ident of the thread inside :func:`load` now, or None (for tests)."""
    return _loading


def install_fork_hooks() -> None:
    """Make a fork wait for :func:`load`; the child gets a new lock. Register this before any
    after-fork hook that starts agent threads in the child (hooks run in registration order)."""
    global _hooks_installed
    if not _hooks_installed and hasattr(os, "register_at_fork"):
        _hooks_installed = True
        os.register_at_fork(
            before=_before_fork, after_in_parent=_after_fork_in_parent, after_in_child=_after_fork_in_child
        )


def _before_fork() -> None:
    global _held_for_fork
    _held_for_fork = _lock.acquire(timeout=FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _lock.release()


def _after_fork_in_child() -> None:
    global _lock, _loading, _held_for_fork
    _lock, _loading, _held_for_fork = threading.Lock(), None, False

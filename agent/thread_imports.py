"""The modules the agent's own threads import, loaded where a fork waits for them.

A thread that imports a module holds that module's import lock until the import ends. Were the
program to fork at that moment, the child would inherit the lock held by a thread it does not
have, and its agent would wait for ever at its next use of the module (at the latest when the
child flushes its profile at exit). Importing them on the thread that starts the agent would put
their milliseconds on every cold start, so each agent thread imports what it needs first, before
its first tick, inside :func:`load`; a fork waits (at most :data:`FORK_WAIT_S`) until no such
import is under way. A module that import registers fork hooks with (``logging`` takes its lock
before a fork and releases it after) then registers them in the middle of that fork, when CPython
has already run the ``before`` hooks it had: :func:`_balance_new_fork_hooks` evens the pair.
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
import sys
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional, Tuple

#: What the sampler thread uses: ``dis`` reads call sites (:mod:`.idle`), ``logging`` the guard's,
#: ``ctypes`` the wall-clock timer (:mod:`.wall_timer`).
SAMPLER = ("ctypes", "dis", "logging")
#: What the scheduler thread's reports use, before the exporters' own (``Exporter.thread_imports``).
REPORTS = ("base64", "gzip", "json", "logging", "re", "uuid")
#: The longest a fork waits for an agent thread's imports (a stuck import must not stop a fork).
FORK_WAIT_S = 5.0

#: Modules whose import registers a pair of fork hooks: a lock taken before a fork, released after it
#: in the parent. Imported by an agent thread while a fork waited for it, such a module's ``before``
#: half did not run (CPython had listed the hooks already) but its release will: see
#: :func:`_balance_new_fork_hooks`. Each names the lock its hooks take, and whether it is an RLock.
PAIRED_FORK_HOOKS = {"logging": ("_lock", True), "concurrent.futures.thread": ("_global_shutdown_lock", False)}

_lock = threading.Lock()
_loading: Optional[int] = None  # the ident of the thread inside load()
_held_for_fork = False
_hooks_installed = False
_unloaded_at_fork: Tuple[str, ...] = ()  # PAIRED_FORK_HOOKS' modules not yet loaded when a fork began


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
    global _held_for_fork, _unloaded_at_fork
    _unloaded_at_fork = tuple(name for name in PAIRED_FORK_HOOKS if not _loaded(name))
    _held_for_fork = _lock.acquire(timeout=FORK_WAIT_S)


def _after_fork_in_parent() -> None:
    global _held_for_fork
    if _held_for_fork:
        _held_for_fork = False
        _lock.release()
    _balance_new_fork_hooks()


def _loaded(name: str) -> bool:
    """Whether module ``name`` is imported and done (its fork hooks, if any, registered)."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None)
    return module is not None and not getattr(spec, "_initializing", False)


def _balance_new_fork_hooks() -> None:
    """Take, once, the lock of each paired-hook module that finished loading during the fork, when its
    ``before`` hook did not take it: its ``after_in_parent`` hook, which runs after this one (registered
    later), then releases a lock it holds instead of raising "cannot release un-acquired lock" in the
    program (and, for an RLock the program held, releasing the program's hold)."""
    global _unloaded_at_fork
    names, _unloaded_at_fork = _unloaded_at_fork, ()
    for name in names:
        module = sys.modules.get(name) if _loaded(name) else None
        attribute, reentrant = PAIRED_FORK_HOOKS[name]
        lock = getattr(module, attribute, None)
        try:
            if lock is not None and not (lock._is_owned() if reentrant else lock.locked()):
                lock.acquire(False)
        except Exception:  # a module whose lock changed kind: leave its hooks as they are
            pass


def _after_fork_in_child() -> None:
    global _lock, _loading, _held_for_fork
    _lock, _loading, _held_for_fork = threading.Lock(), None, False

"""Which threads the thread engine samples: the agent's own never, at most ``max_threads`` per sample.

:class:`ThreadTable` is refreshed once a second, or as soon as the number of threads changes: the
kernel ids (for the CPU probe), the names (the ``thread`` label), the threads to skip (the agent's),
and whether the main thread is the only thread to sample, in which case the SIGPROF handler
samples it alone (:mod:`greenflame.agent.signal_handler`).
"""

from __future__ import annotations

import threading

from . import own_threads

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType
    from typing import Callable, Dict, List, Optional, Set, Tuple

    #: A thread to sample: its identifier and innermost frame.
    Sampled = Tuple[int, FrameType]

#: threading's live table of the threads it started (or adopted), read only for its length (atomic):
#: a change tells the SIGPROF handler that the main thread may no longer be alone.
ACTIVE: Optional[Dict[int, object]] = getattr(threading, "_active", None)
#: How often the table is refreshed at least.
REFRESH_NS = 1_000_000_000


def active_count() -> int:
    """The length of threading's table of live threads, -1 when this Python has none."""
    return len(ACTIVE) if ACTIVE is not None else -1


class ThreadTable:
    """The threads to sample, their kernel ids and names, and whether the main thread is alone.

    ``excluded()`` names the agent's other threads (never sampled); ``count_drop(reason, n)``
    counts threads left out of a sample (it must not wait for a lock: the SIGPROF handler calls
    :meth:`select` too).
    """

    def __init__(
        self, max_threads: int, excluded: Callable[[], Set[Optional[int]]], count_drop: Callable[[str, int], None]
    ) -> None:
        self._max_threads = max_threads
        self._excluded = excluded
        self._count_drop = count_drop
        self._ticks = 0
        #: Thread identifier -> kernel thread id.
        self.native: Dict[int, int] = {}
        #: Thread identifier -> name.
        self.names: Dict[int, str] = {}
        #: The threads never sampled (the agent's).
        self.skip: Set[Optional[int]] = set()
        #: The number of threads at the last refresh; -1 before the first (the handler then waits).
        self.count = -1
        #: The main thread's identifier at the last refresh.
        self.main_ident: Optional[int] = None
        #: len(threading._active) when the main thread was found to be the only thread to sample, or
        #: -1: while the length holds, the SIGPROF handler samples the main thread alone.
        self.solo_active = -1
        #: Set by the SIGPROF handler when the number of threads changed (enumerating them takes a lock).
        self.refresh_wanted = False
        self._refresh_at_ns = 0
        self._own_generation = -1

    def invalidate(self) -> None:
        """Refresh at the next look (the sampler's own thread is new)."""
        self.count = -1

    def due(self, frames: Dict[int, FrameType], now_ns: int) -> bool:
        """Whether to refresh: when asked for, once a second, when the number of threads changed, or
        when the agent registered a thread of its own since (see :mod:`.own_threads`)."""
        return (
            self.refresh_wanted
            or now_ns >= self._refresh_at_ns
            or len(frames) != self.count
            or own_threads.generation() != self._own_generation
        )

    def refresh(self, frames: Dict[int, FrameType], now_ns: int, active: int, own: Set[Optional[int]]) -> None:
        """Kernel ids, names, the threads to skip (the agent's and ``own``, the sampler's threads),
        whether the main thread is alone (``active``: the length of threading's table, read before
        ``frames``, so that a thread registered in between makes the two disagree, not agree)."""
        self._own_generation = own_threads.generation()  # first: a thread added during the refresh is seen next time
        known = [t for t in threading.enumerate() if t.ident is not None]
        self.native = {t.ident: t.native_id for t in known if t.native_id is not None}  # type: ignore[misc]
        self.names = {t.ident: t.name for t in known}  # type: ignore[misc]
        skip = self.skip = self._excluded() | own
        self.count = len(frames)
        main = self.main_ident = threading.main_thread().ident
        alone = all(ident == main or ident in skip for ident in frames)
        self.solo_active = active if alone and active >= 0 else -1
        self._refresh_at_ns = now_ns + REFRESH_NS
        self.refresh_wanted = False

    def select(self, frames: Dict[int, FrameType]) -> List[Sampled]:
        """The threads of ``frames`` to sample: not the agent's, at most ``max_threads``, starting at a
        different one each time so none is starved (the others counted as ``max_threads`` drops)."""
        skip = self.skip
        if own_threads.generation() != self._own_generation:
            # An agent thread started since the last refresh, which the sampler thread may do only
            # a second later: skip it already (no lock here, the handler calls this too).
            skip = self.skip = skip | own_threads.registered()
        threads = [(ident, frame) for ident, frame in frames.items() if ident not in skip]
        if len(threads) <= self._max_threads:
            return threads
        self._ticks += 1
        self._count_drop("max_threads", len(threads) - self._max_threads)
        start = self._ticks % len(threads)
        rotated = threads[start:] + threads[:start]
        return rotated[: self._max_threads]

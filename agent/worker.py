"""A periodic daemon thread with a clean lifecycle: start, stop with a timeout."""

from __future__ import annotations

import threading
import time

from . import thread_imports
from .guard import report

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, List, Optional, Set

_SLICE_S = 0.1


class PeriodicWorker:
    """Calls ``tick()`` on a daemon thread, waiting ``next_delay()`` seconds before each call.

    Every tick runs inside the guard, so an agent bug is logged and the loop goes on. The thread
    is a daemon: it never keeps the host process alive. Before its first tick it imports
    ``imports()`` (:func:`~greenflame.agent.thread_imports.load`).
    """

    def __init__(
        self,
        name: str,
        tick: Callable[[], None],
        next_delay: Callable[[], float],
        imports: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self._name = name
        self._tick = tick
        self._next_delay = next_delay
        self._imports = imports
        self._stopping = threading.Event()
        self._thread: Optional[threading.Thread] = None
        #: Every thread started and not yet known to have ended: a stopped one finishes its tick.
        self._threads: List[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def ident(self) -> Optional[int]:
        """The running thread's identifier, or None."""
        thread = self._thread
        return thread.ident if thread is not None else None

    def idents(self) -> Set[Optional[int]]:
        """The identifiers of this worker's threads that still run, the current one and any asked to
        stop that is finishing its tick (which must not see itself as someone else's thread). Takes no lock."""
        current = self._thread
        return {thread.ident for thread in tuple(self._threads) if thread is current or thread.is_alive()}

    @property
    def native_id(self) -> Optional[int]:
        """The running thread's kernel thread id, or None."""
        thread = self._thread
        return thread.native_id if thread is not None else None

    def is_alive(self) -> bool:
        """Whether the thread is running."""
        thread = self._thread
        return thread is not None and thread.is_alive()

    def start(self) -> None:
        """Start the thread; harmless when it already runs."""
        with self._lock:
            if self.is_alive():
                return
            self._stopping = threading.Event()
            thread = threading.Thread(target=self._run, args=(self._stopping,), name=self._name, daemon=True)
            # Known before it runs: its first tick may come before start() returns, and the sampler
            # then asks for its own thread's ident to leave itself out.
            self._thread = thread
            self._threads = [old for old in self._threads if old.is_alive()] + [thread]
            try:
                thread.start()
            except BaseException:
                self._thread = None
                raise

    def stop(self, timeout: float = 1.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` seconds for it."""
        with self._lock:
            thread, self._thread = self._thread, None
            self._stopping.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self, stopping: threading.Event) -> None:
        # try/except rather than the guard() context manager: this loop is the sampler's hot path.
        name, tick, next_delay = self._name, self._tick, self._next_delay
        try:
            thread_imports.load(self._imports())
        except Exception as error:
            report(f"{name} imports", error)
        slept = True
        while True:
            try:
                delay = max(0.0, next_delay())
            except Exception as error:
                report(f"{name} delay", error)
                delay = 1.0
            # A tick already due runs at once, without giving up the GIL: behind busy threads each
            # hand-over costs a wait of several switch intervals. Never twice in a row, so the loop
            # still lets a stop through and cannot spin.
            if delay > 0 or not slept:
                if _sleep(delay, stopping):
                    return
                slept = True
            else:
                slept = False
            try:
                tick()
            except Exception as error:
                report(name, error)


def _sleep(delay: float, stopping: threading.Event) -> bool:
    """Wait ``delay`` seconds or until ``stopping`` is set; True when it is.

    ``time.sleep`` for short waits (the sampler's ticks): with busy threads holding the GIL, each
    wake-up costs a GIL hand-over, and ``Event.wait`` (a Condition with a temporary lock) was
    measured at about 1.5 times the CPU of a plain sleep per tick. A long wait (more than
    :data:`_SLICE_S`) is one ``Event.wait``, which a stop ends at once, rather than several
    sleeps: each wake-up costs the program a GIL hand-over.
    """
    if delay <= _SLICE_S:
        time.sleep(delay)
        return stopping.is_set()
    return stopping.wait(delay)

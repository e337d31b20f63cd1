"""Flushes the profiler every ``report_interval_s`` on a daemon thread, never on the user's thread.

The same thread runs a housekeeping step (the kill-switch file) about once a second.
"""

from __future__ import annotations

import random
import time

from .worker import PeriodicWorker

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Iterable, Optional, Set


HOUSEKEEPING_S = 1.0
#: An interval at which the scheduler never reports (Lambda reports at the end of invocations).
OFF_S = 86400.0


class Scheduler:
    """Calls ``flush()`` every ``interval_s`` seconds (give or take 5%) on its own daemon thread.

    The small jitter keeps a fleet of processes started together from reporting in lockstep.
    ``housekeeping()``, when given, is called at least every :data:`HOUSEKEEPING_S` seconds.
    ``imports()``: the modules the thread imports before its first tick (what ``flush()`` uses).
    """

    def __init__(
        self,
        interval_s: float,
        flush: Callable[[], object],
        housekeeping: Optional[Callable[[], object]] = None,
        clock: Callable[[], float] = time.monotonic,
        imports: Callable[[], Iterable[str]] = tuple,
    ) -> None:
        self.interval_s = interval_s
        self._flush = flush
        self._housekeeping = housekeeping
        self._clock = clock
        self._next_flush = clock() + self._jittered()
        self._worker = PeriodicWorker("greenflame-scheduler", self._tick, self._next_delay, imports)

    def idents(self) -> Set[Optional[int]]:
        """The scheduler's threads that still run, one asked to stop included (see ``PeriodicWorker.idents``)."""
        return self._worker.idents()

    @property
    def native_id(self) -> Optional[int]:
        """The scheduler thread's kernel thread id while it runs."""
        return self._worker.native_id

    def is_alive(self) -> bool:
        """Whether the scheduler thread runs."""
        return self._worker.is_alive()

    def start(self) -> None:
        """Start the thread (harmless when already started), unless it would have nothing to do: it
        does not report (:data:`OFF_S`, as in Lambda, where reports go at invocation ends) and keeps
        no house. A thread that only waits still costs a wake-up each time a Lambda environment is
        frozen and thawed (a waiting thread is woken to stop, and its wait restarted)."""
        if self.reports or self._housekeeping is not None:
            self._worker.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds (an export in flight may outlive it)."""
        self._worker.stop(timeout)

    @property
    def reports(self) -> bool:
        """Whether this thread exports reports (unless the interval is :data:`OFF_S`)."""
        return self.interval_s < OFF_S

    def _tick(self) -> None:
        if self._housekeeping is not None:
            self._housekeeping()
        if self.reports and self._clock() >= self._next_flush:
            self._next_flush = self._clock() + self._jittered()
            self._flush()

    def _jittered(self) -> float:
        return self.interval_s * random.uniform(0.95, 1.05)

    def _next_delay(self) -> float:
        until_flush = max(0.0, self._next_flush - self._clock())
        return until_flush if self._housekeeping is None else min(HOUSEKEEPING_S, until_flush)

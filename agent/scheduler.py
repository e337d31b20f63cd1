"""Flushes the profiler every ``report_interval_s`` on a daemon thread, never on the user's thread."""

from __future__ import annotations

import random
from typing import Callable, Optional

from .worker import PeriodicWorker


class Scheduler:
    """Calls ``flush()`` every ``interval_s`` seconds (give or take 5%) on its own daemon thread.

    The small jitter keeps a fleet of processes started together from reporting in lockstep.
    """

    def __init__(self, interval_s: float, flush: Callable[[], object]) -> None:
        self.interval_s = interval_s
        self._flush = flush
        self._worker = PeriodicWorker("greenflame-scheduler", self._tick, self._next_delay)

    @property
    def ident(self) -> Optional[int]:
        """The scheduler thread's identifier while it runs."""
        return self._worker.ident

    def is_alive(self) -> bool:
        """Whether the scheduler thread runs."""
        return self._worker.is_alive()

    def start(self) -> None:
        """Start the thread (harmless when already started)."""
        self._worker.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread, waiting up to ``timeout`` seconds (an export in flight may outlive it)."""
        self._worker.stop(timeout)

    def _tick(self) -> None:
        self._flush()

    def _next_delay(self) -> float:
        return self.interval_s * random.uniform(0.95, 1.05)

"""Per-report statistics of Lambda-style invocations: ``metadata["invocations"]``."""

from __future__ import annotations

import random
import threading

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional

MAX_DURATIONS = 1000


class InvocationStats:
    """Counts invocations, cold starts and durations; keeps at most 1,000 durations per report.

    ``first_sequence`` numbers the window's first invocation among all the process's invocations
    (1: the window holds the sandbox's first, cold, invocation). Past 1,000 invocations the kept
    durations are a uniform random sample of all of them
    (reservoir sampling), so their distribution stays representative.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sequence = 0  # invocations counted since the process started; never reset
        self._reset()

    def _reset(self) -> None:
        self._count = 0
        self._cold_starts = 0
        self._duration_sum = 0.0
        self._durations: List[float] = []
        self._first_sequence = 0

    def record(self, duration_ms: float, cold_start: bool) -> None:
        """Count one invocation that took ``duration_ms`` milliseconds."""
        duration = max(0.0, float(duration_ms))
        with self._lock:
            self._sequence += 1
            if not self._count:
                self._first_sequence = self._sequence
            self._count += 1
            self._cold_starts += 1 if cold_start else 0
            self._duration_sum += duration
            if len(self._durations) < MAX_DURATIONS:
                self._durations.append(duration)
            else:
                slot = random.randrange(self._count)
                if slot < MAX_DURATIONS:
                    self._durations[slot] = duration

    def take(self) -> Optional[Dict[str, Any]]:
        """The statistics since the last call (None when there was no invocation), resetting them."""
        with self._lock:
            if not self._count:
                return None
            stats = {
                "count": self._count,
                "cold_starts": self._cold_starts,
                "duration_ms_sum": self._duration_sum,
                "durations_ms": self._durations,
                "first_sequence": self._first_sequence,
            }
            self._reset()
        return stats

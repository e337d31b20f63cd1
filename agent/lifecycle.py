"""The profiler's lifecycle as a small state machine.

::

    created --start--> running --pause--> paused --resume--> running
       |                  |                  |
       +------stop--------+-------stop-------+----> stopped (final)

Any other event in a state is ignored (and reported as not allowed), so a second ``start``, a
``resume`` of a running profiler or a ``pause`` after ``stop`` are harmless no-ops.
"""

from __future__ import annotations

import threading

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

CREATED, RUNNING, PAUSED, STOPPED = "created", "running", "paused", "stopped"

TRANSITIONS: Dict[Tuple[str, str], str] = {
    (CREATED, "start"): RUNNING,
    (CREATED, "stop"): STOPPED,
    (RUNNING, "pause"): PAUSED,
    (RUNNING, "stop"): STOPPED,
    (PAUSED, "resume"): RUNNING,
    (PAUSED, "stop"): STOPPED,
}


class Lifecycle:
    """The current state and its allowed transitions; thread-safe."""

    def __init__(self) -> None:
        self.state = CREATED
        self._lock = threading.Lock()

    def fire(self, event: str) -> Optional[str]:
        """Apply ``event``; the new state, or None when the event is not allowed now."""
        with self._lock:
            target = TRANSITIONS.get((self.state, event))
            if target is not None:
                self.state = target
            return target

    def reset_after_fork(self) -> None:
        """A fresh lock in a forked child (another thread may have held the parent's)."""
        self._lock = threading.Lock()

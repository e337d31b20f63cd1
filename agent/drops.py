"""Counts of dropped samples and reports, by reason, shipped in each report's metadata."""

from __future__ import annotations

import threading

# mypy treats any name TYPE_CHECKING as true; typing is not imported at run time.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Mapping


class DropCounter:
    """A thread-safe ``reason -> count`` tally that is taken (and reset) once per report."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Dict[str, int] = {}

    def add(self, reason: str, count: int = 1) -> None:
        """Count ``count`` items dropped for ``reason``."""
        if count <= 0:
            return
        with self._lock:
            self._counts[reason] = self._counts.get(reason, 0) + count

    def restore(self, counts: Mapping[str, int]) -> None:
        """Put back counts taken for a report that could not be delivered."""
        for reason, count in counts.items():
            self.add(reason, count)

    def take(self) -> Dict[str, int]:
        """The counts since the last call, resetting them."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts

    def take_into(self, report: Dict[str, Any]) -> None:
        """Move the counts into ``report``'s ``metadata["dropped"]`` (added to what it holds)."""
        counts = self.take()
        if not counts:
            return
        dropped = report.setdefault("metadata", {}).setdefault("dropped", {})
        for reason, count in counts.items():
            dropped[reason] = dropped.get(reason, 0) + count

    def peek(self) -> Dict[str, int]:
        """The current counts, without resetting them."""
        with self._lock:
            return dict(self._counts)

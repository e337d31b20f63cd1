"""The fixed twin of ``strptime_brown``: ``datetime.fromisoformat`` parses the timestamps in C.

Must not trigger ``strptime-hot``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict

from ._events import EVENTS, sessionize


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Sessions in a batch of page-view events."""
    records = event.get("records", EVENTS)
    return sessionize([(r["user"], datetime.fromisoformat(r["at"]), r["ms"]) for r in records])

"""Click-stream events of the ``strptime_*`` and ``logging_*`` samples, and the sessionising they do."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Dict, List, Tuple

#: A batch of 12,000 page-view events with ISO 8601 timestamps, as a Kinesis consumer gets them.
EVENTS: List[Dict[str, Any]] = [
    {
        "user": f"u-{n % 97}",
        "page": f"/products/{n % 211}",
        "at": f"2026-11-{1 + n % 28:02d}T{n % 24:02d}:{n % 60:02d}:{(n * 7) % 60:02d}.{(n * 1013) % 1000000:06d}+00:00",
        "ms": 20 + (n * 37) % 900,
    }
    for n in range(12000)
]

#: A new session starts after this much inactivity.
SESSION_GAP = timedelta(minutes=30)


def sessionize(views: List[Tuple[str, datetime, int]]) -> Dict[str, Any]:
    """Sessions per user from ``(user, time, ms on page)`` views: count, and mean views per session."""
    views.sort()
    sessions: Dict[str, int] = {}
    last: Dict[str, datetime] = {}
    for user, at, _ in views:
        if user not in last or at - last[user] > SESSION_GAP:
            sessions[user] = sessions.get(user, 0) + 1
        last[user] = at
    total = sum(sessions.values())
    return {"users": len(sessions), "sessions": total, "views_per_session": len(views) / max(total, 1)}

"""Lambda handler that parses each event's ISO 8601 timestamp with ``datetime.strptime``.

strptime runs ``_strptime.py`` in Python for every timestamp. Triggers ``strptime-hot``;
``strptime_green`` is the fixed twin.

    greenflame lambda invoke greenflame.sample_apps.strptime_brown.lambda_handler \\
        --invocations 20 --out strptime_brown.json
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Dict

from ._events import EVENTS, sessionize

FORMAT = "%Y-%m-%dT%H:%M:%S.%f%z"


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Sessions in a batch of page-view events."""
    records = event.get("records", EVENTS)
    return sessionize([(r["user"], datetime.strptime(r["at"], FORMAT), r["ms"]) for r in records])

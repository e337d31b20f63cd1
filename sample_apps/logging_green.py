"""The fixed twin of ``logging_brown``: INFO level, one record per batch (the debug calls stop at the level check).

Must not trigger ``logging-overhead``.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict

from ._events import EVENTS, sessionize

# Lambda's Python runtime installs its own handler on the root logger (so basicConfig does
# nothing there); functions set the level, as AWS's examples do.
logging.getLogger().setLevel(logging.INFO)
log = logging.getLogger("sessions")


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Sessions in a batch of page-view events."""
    records = event.get("records", EVENTS)
    log.info("sessionizing %d events", len(records))  # one record per invocation
    views = []
    for record in records:
        log.debug("event user=%s page=%s at=%s ms=%d", record["user"], record["page"], record["at"], record["ms"])
        views.append((record["user"], datetime.fromisoformat(record["at"]), record["ms"]))
    return sessionize(views)

"""Lambda handler that logs every event of its batch at DEBUG, with the level left at DEBUG.

Every record walks the stack for its caller, builds a LogRecord, formats message and time and
writes a line. Triggers ``logging-overhead``; ``logging_green`` is the fixed twin. The log goes
to standard error, as Lambda's does (to CloudWatch Logs, which bills it again per GB ingested).

    greenflame lambda invoke greenflame.sample_apps.logging_brown.lambda_handler \\
        --invocations 10 --out logging_brown.json 2>/dev/null
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Dict

from ._events import EVENTS, sessionize

# Lambda's Python runtime installs its own handler on the root logger (so basicConfig does
# nothing there); functions set the level, as AWS's examples do.
logging.getLogger().setLevel(logging.DEBUG)  # left on in production
log = logging.getLogger("sessions")


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Sessions in a batch of page-view events."""
    views = []
    for record in event.get("records", EVENTS):
        log.debug("event user=%s page=%s at=%s ms=%d", record["user"], record["page"], record["at"], record["ms"])
        views.append((record["user"], datetime.fromisoformat(record["at"]), record["ms"]))
    result = sessionize(views)
    log.info("batch done: %d users, %d sessions", result["users"], result["sessions"])
    return result

"""The fixed twin of ``idle_brown``: start the export and return; the platform does the waiting.

The job's completion is handled by a second function (``on_export_done``), invoked by the job
service's completion event (or a Step Functions state machine polls with a Wait state, which is
not billed as Lambda time). Must not trigger ``idle-wait-billed``.
"""

from __future__ import annotations

from typing import Any, Dict

import requests

from ._api import base_url

SESSION = requests.Session()


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Start the export of ``event['report']``; completion arrives as another event."""
    job = SESSION.post(f"{base_url()}/jobs", json={"report": event.get("report", "daily-sales")}, timeout=5).json()
    return {"job": job["id"], "status": job["status"]}


def on_export_done(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Handle the job service's completion event for ``event['job']``."""
    status = SESSION.get(f"{base_url()}/jobs/{event['job']}", timeout=5).json()
    return {"job": status["id"], "status": status["status"]}

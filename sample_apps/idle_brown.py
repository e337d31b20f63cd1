"""Lambda handler that starts an export job and polls it with ``time.sleep`` until it is done.

Lambda bills every millisecond of the wait. Triggers ``idle-wait-billed``; ``idle_green`` is the
fixed twin. The job API is the local stand-in (no network)::

    python -m greenflame.sample_apps.stub_api --port 8765 &
    SAMPLE_API_URL=http://127.0.0.1:8765 greenflame lambda invoke \\
        greenflame.sample_apps.idle_brown.lambda_handler --invocations 30 --out idle_brown.json
"""

from __future__ import annotations

import time
from typing import Any, Dict

import requests

from ._api import base_url

SESSION = requests.Session()
POLL_SECONDS = 0.01


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Start the export of ``event['report']`` and return when it is done."""
    job = SESSION.post(f"{base_url()}/jobs", json={"report": event.get("report", "daily-sales")}, timeout=5).json()
    while SESSION.get(f"{base_url()}/jobs/{job['id']}", timeout=5).json()["status"] != "DONE":
        time.sleep(POLL_SECONDS)
    return {"job": job["id"], "status": "DONE"}

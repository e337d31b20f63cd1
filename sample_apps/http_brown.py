"""Lambda handler that quotes a basket's prices with ``requests.get`` per call: a new connection each time.

``requests.get`` builds a ``Session``, its adapters and a urllib3 pool manager, opens a TCP
connection, then throws them all away: nothing is reused between calls nor between warm
invocations. Triggers ``http-connection-per-request``; ``http_green`` is the fixed twin.

Needs the local stand-in API (no network)::

    python -m greenflame.sample_apps.stub_api --port 8765 &
    SAMPLE_API_URL=http://127.0.0.1:8765 greenflame lambda invoke \\
        greenflame.sample_apps.http_brown.lambda_handler --invocations 150 --out http_brown.json
"""

from __future__ import annotations

from typing import Any, Dict, List

import requests

from ._api import base_url

BASKET = ["sku-1001", "sku-1002", "sku-1003", "sku-2001"]


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Quote every item of the basket; the sum in cents."""
    quotes: List[Dict[str, Any]] = []
    for sku in event.get("basket", BASKET):
        response = requests.get(f"{base_url()}/prices/{sku}", timeout=5)
        response.raise_for_status()
        quotes.append(response.json())
    return {"items": len(quotes), "total_cents": sum(q["cents"] for q in quotes)}

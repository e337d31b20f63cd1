"""The fixed twin of ``http_brown``: one ``requests.Session`` for the execution environment.

The session keeps its connections alive, so warm invocations reuse the connection opened by the
first one. Must not trigger ``http-connection-per-request``.

    SAMPLE_API_URL=http://127.0.0.1:8765 greenflame lambda invoke \\
        greenflame.sample_apps.http_green.lambda_handler --invocations 150 --out http_green.json
"""

from __future__ import annotations

from typing import Any, Dict, List

import requests

from ._api import base_url

BASKET = ["sku-1001", "sku-1002", "sku-1003", "sku-2001"]

# Initialization code: one session (and connection pool) per execution environment.
SESSION = requests.Session()


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Quote every item of the basket; the sum in cents."""
    quotes: List[Dict[str, Any]] = []
    for sku in event.get("basket", BASKET):
        response = SESSION.get(f"{base_url()}/prices/{sku}", timeout=5)
        response.raise_for_status()
        quotes.append(response.json())
    return {"items": len(quotes), "total_cents": sum(q["cents"] for q in quotes)}

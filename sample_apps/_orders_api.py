"""The orders API of the ``flask_*`` samples: a small Flask app serving an order list as JSON."""

from __future__ import annotations

import argparse
import logging
from typing import Any, Dict, List, Optional, Sequence

from flask import Flask, jsonify, request

STATUSES = ("placed", "paid", "packed", "shipped", "delivered")


def orders(customer: str, count: int) -> List[Dict[str, Any]]:
    """The ``count`` most recent orders of ``customer``, as the API returns them."""
    return [
        {
            "id": f"{customer}-{n}",
            "status": STATUSES[n % len(STATUSES)],
            "lines": [
                {"sku": f"sku-{(n * 7 + k) % 400}", "units": 1 + k, "cents": 250 + (n * k) % 900} for k in range(3)
            ],
            "shipping": {"carrier": "dhl" if n % 2 else "ups", "country": "DE", "tracking": f"TRK{n:08d}"},
        }
        for n in range(count)
    ]


def create_app(compact: Optional[bool]) -> Flask:
    """The API; ``compact=False`` pretty-prints every JSON response (``None``: Flask's default)."""
    app = Flask("orders-api")
    app.json.compact = compact  # type: ignore[attr-defined]

    @app.get("/customers/<customer>/orders")
    def customer_orders(customer: str) -> Any:
        count = min(int(request.args.get("limit", 100)), 500)
        return jsonify(orders=orders(customer, count))

    @app.get("/health")
    def health() -> Any:
        return {"ok": True}

    return app


def serve(app: Flask, argv: Optional[Sequence[str]] = None) -> None:
    """Serve ``app`` on 127.0.0.1 (``--port``), one request at a time, like a sync worker."""
    parser = argparse.ArgumentParser(description="orders API sample")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    # Access logs come from the load balancer in front of the service, not from each worker.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    app.run(host="127.0.0.1", port=args.port, threaded=False)

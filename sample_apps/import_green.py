"""The fixed twin of ``import_brown``: the pricing rules are imported once, in the init phase.

Rules change with a deployment (a new version of the function), not per invocation. Must not
trigger ``import-in-handler``.
"""

from __future__ import annotations

from typing import Any, Dict

from . import pricing_rules

#: A wholesale order: 1,500 lines.
LINES = [(f"sku-{1000 + (i * 7) % 400}", 1 + i % 250) for i in range(1500)]


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Quote the order lines of ``event`` with the pricing rules."""
    lines = [(sku, int(units)) for sku, units in event.get("lines", LINES * int(event.get("orders", 1)))]
    return {"total_cents": pricing_rules.quote(lines)}

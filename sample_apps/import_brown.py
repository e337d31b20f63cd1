"""Lambda handler that reloads its pricing-rules module on every invocation.

``importlib.reload`` finds the module again, reads its byte code and re-executes its body
(rebuilding a 400-product catalogue), on every call. Triggers ``import-in-handler``;
``import_green`` is the fixed twin.

    greenflame lambda invoke greenflame.sample_apps.import_brown.lambda_handler \\
        --invocations 100 --out import_brown.json
"""

from __future__ import annotations

import importlib
from typing import Any, Dict

#: A wholesale order: 1,500 lines.
LINES = [(f"sku-{1000 + (i * 7) % 400}", 1 + i % 250) for i in range(1500)]


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Quote the order lines of ``event`` with the current pricing rules."""
    rules = importlib.import_module("greenflame.sample_apps.pricing_rules")
    rules = importlib.reload(rules)  # "pick up edited rules without a redeploy"
    lines = [(sku, int(units)) for sku, units in event.get("lines", LINES * int(event.get("orders", 1)))]
    return {"total_cents": rules.quote(lines)}

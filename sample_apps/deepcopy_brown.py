"""Lambda handler that deep-copies the invoice template, and a line template per order line.

``copy.deepcopy`` walks the nested templates in Python (hundreds of objects for the invoice, a
dozen per line) on every call, only to overwrite a few fields. Triggers ``deepcopy-hot``;
``deepcopy_green`` is the fixed twin.

    greenflame lambda invoke greenflame.sample_apps.deepcopy_brown.lambda_handler \\
        --invocations 100 --out deepcopy_brown.json
"""

from __future__ import annotations

import copy
from typing import Any, Dict

from ._invoice_template import LINE_TEMPLATE, ORDER_LINES, TEMPLATE, render


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Build and render the invoice of ``event`` (country and order lines) from the templates."""
    invoice = copy.deepcopy(TEMPLATE)
    for item in event.get("lines", ORDER_LINES):
        line = copy.deepcopy(LINE_TEMPLATE)
        line.update(item)
        rate = invoice["tax_rates"][line["category"]]["rate"]
        line["tax"] = {"rate": rate, "cents": line["cents"] * rate // 100}
        invoice["lines"].append(line)
    net = sum(line["cents"] for line in invoice["lines"])
    tax = sum(line["tax"]["cents"] for line in invoice["lines"])
    invoice["totals"] = {"net_cents": net, "tax_cents": tax, "gross_cents": net + tax}
    country = event.get("country", "DE")
    return {"legal": invoice["legal"][country], "totals": invoice["totals"], "text": render(invoice)}

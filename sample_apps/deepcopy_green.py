"""The fixed twin of ``deepcopy_brown``: new objects only for what changes.

Each line is a new dict over the line defaults (``{**LINE_TEMPLATE, **item}``) with its own tax
entry, and the invoice shares the template's unchanged parts. The templates are never mutated.
Must not trigger ``deepcopy-hot``.
"""

from __future__ import annotations

from typing import Any, Dict

from ._invoice_template import LINE_TEMPLATE, ORDER_LINES, TEMPLATE, render


def lambda_handler(event: Dict[str, Any], context: Any) -> Dict[str, Any]:
    """Build and render the invoice of ``event`` (country and order lines) from the templates."""
    lines = []
    for item in event.get("lines", ORDER_LINES):
        rate = TEMPLATE["tax_rates"][item["category"]]["rate"]
        lines.append({**LINE_TEMPLATE, **item, "tax": {"rate": rate, "cents": item["cents"] * rate // 100}})
    net = sum(line["cents"] for line in lines)
    tax = sum(line["tax"]["cents"] for line in lines)
    invoice = {**TEMPLATE, "lines": lines, "totals": {"net_cents": net, "tax_cents": tax, "gross_cents": net + tax}}
    country = event.get("country", "DE")
    return {"legal": invoice["legal"][country], "totals": invoice["totals"], "text": render(invoice)}

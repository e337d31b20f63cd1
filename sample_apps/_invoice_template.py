"""The invoice template of the ``deepcopy_*`` samples: defaults for every field of an invoice."""

from __future__ import annotations

from typing import Any, Dict

#: A nested template: branding, legal texts per country, tax table, and empty line items.
TEMPLATE: Dict[str, Any] = {
    "branding": {"logo": "s3://assets/logo.svg", "colours": {"primary": "#0b6e4f", "accent": "#f2c14e"}},
    "legal": {
        country: {"vat_note": f"VAT rules for {country}", "footer": [f"Registered in {country}", "Capital 10,000"]}
        for country in ("DE", "FR", "NL", "BE", "IT", "ES", "PT", "AT", "IE", "FI", "SE", "DK", "PL", "CZ")
    },
    "tax_rates": {f"category-{n}": {"rate": n % 25, "reduced": n % 7, "exempt": n % 13 == 0} for n in range(120)},
    "currency": "EUR",
    "lines": [],
    "totals": {"net_cents": 0, "tax_cents": 0, "gross_cents": 0},
}

#: Defaults of one invoice line.
LINE_TEMPLATE: Dict[str, Any] = {
    "sku": None,
    "cents": 0,
    "category": "category-0",
    "discounts": [],
    "tax": {"rate": 0, "cents": 0},
    "meta": {"source": "api", "tags": ["invoice", "line"], "warehouse": {"id": "w-1", "country": "DE"}},
}

#: The order lines of a default event: a 3,000-line wholesale order.
ORDER_LINES = [{"sku": f"sku-{n}", "cents": 250 + n * 3, "category": f"category-{n % 120}"} for n in range(3000)]


def render(invoice: Dict[str, Any]) -> str:
    """The invoice as text, one line per item (the real work of both samples)."""
    rows = [
        f"{line['sku']:<10} {line['category']:<14} {line['cents'] / 100:>9.2f} {line['tax']['cents'] / 100:>7.2f}"
        for line in invoice["lines"]
    ]
    totals = invoice["totals"]
    rows.append(f"{'total':<25} {totals['net_cents'] / 100:>9.2f} {totals['tax_cents'] / 100:>7.2f}")
    return "\n".join(rows)

"""Pricing rules of the ``import_*`` samples: a table of tiers and the functions that apply them.

``import_brown`` reloads this module on every invocation ("so that edited rules apply without a
redeploy"); ``import_green`` imports it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, List, Tuple


@dataclass(frozen=True)
class Tier:
    """A volume discount: from ``min_units`` on, ``percent_off`` percent off."""

    min_units: int
    percent_off: Decimal


@dataclass(frozen=True)
class Product:
    """A product's list price and discount tiers."""

    sku: str
    cents: int
    tiers: Tuple[Tier, ...]


def _tiers(step: int) -> Tuple[Tier, ...]:
    return tuple(Tier(units, Decimal(percent)) for units, percent in ((10 * step, 2), (50 * step, 5), (200 * step, 9)))


CATALOGUE: Dict[str, Product] = {
    f"sku-{n}": Product(f"sku-{n}", 250 + (n * 37) % 4000, _tiers(1 + n % 4)) for n in range(1000, 1400)
}


def unit_price(product: Product, units: int) -> Decimal:
    """The price of one unit when ``units`` are bought, in cents."""
    percent = max((t.percent_off for t in product.tiers if units >= t.min_units), default=Decimal(0))
    return Decimal(product.cents) * (100 - percent) / 100


def quote(lines: List[Tuple[str, int]]) -> int:
    """Total in cents of ``(sku, units)`` lines, rounded half up."""
    total = sum((unit_price(CATALOGUE[sku], units) * units for sku, units in lines), Decimal(0))
    return int(total.quantize(Decimal(1), rounding="ROUND_HALF_UP"))

"""Number and frame formatting shared by the human-readable renderers."""

from __future__ import annotations

import unicodedata
from typing import Any, Dict, Mapping, Optional


def clean(text: Any, limit: int = 200) -> str:
    """Frame and metadata text made safe for a terminal: no control characters, bounded length."""
    value = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def usd(value: Optional[float]) -> str:
    """``$1,234.56``, with cents below $1 shown to the cent; ``n/a`` when unknown."""
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def kg(value: Optional[float]) -> str:
    """Kilograms with three significant figures; ``n/a`` when unknown."""
    return "n/a" if value is None else f"{value:.3g} kg"


def co2_range(value: Optional[Mapping[str, float]]) -> str:
    """``0.056 kg CO2e/month (range 0.034-0.14)``, or ``n/a``."""
    if not value:
        return "n/a"
    return f"{value['central']:.3g} kg CO2e/month (range {value['low']:.2g}-{value['high']:.2g})"


def percent(value: Optional[float]) -> str:
    """``12.3%``."""
    return "n/a" if value is None else f"{value:.1%}"


def setting(value: Optional[Mapping[str, Any]], unit: str = "") -> str:
    """An input with its source: ``512 MB (profile)``."""
    if not value:
        return "unknown"
    shown = value["value"]
    if isinstance(shown, float):
        shown = f"{shown:,.1f}" if shown < 1e5 else f"{shown:,.0f}"
    return f"{clean(shown)}{unit} ({value['source']})"


def frame(item: Mapping[str, Any]) -> str:
    """``function (file:line)`` from a frame dict."""
    name = clean(item.get("function") or item.get("name") or "?")
    if not item.get("file"):
        return name
    return f"{name} ({clean(item['file'])}:{item.get('line', 0)})"


def caller(stack: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The frame that called the matching frame in an evidence stack, if any."""
    frames = stack.get("frames") or []
    return frames[-2] if len(frames) >= 2 else None


def sci(value: Optional[Mapping[str, Optional[float]]], unit: str = "invocation") -> str:
    """``3.7e-06 -> 2.8e-06 g CO2e per invocation``, or ``n/a``."""
    if not value or value.get("before") is None or value.get("after") is None:
        return "n/a"
    return f"{value['before']:.2g} -> {value['after']:.2g} g CO2e per {unit}"


def finding_sci(finding: Mapping[str, Any]) -> str:
    """A finding's SCI before -> after: per invocation (Lambda) or per request (services)."""
    for key, unit in (("sci_g_per_invocation", "invocation"), ("sci_g_per_request", "request")):
        text = sci(finding.get(key), unit)
        if text != "n/a":
            return text
    return "n/a"


def cost_basis(inputs: Mapping[str, Any]) -> str:
    """What a finding's dollars price, in parentheses with a leading space; empty when unknown."""
    price = inputs.get("usd_per_vcpu_hour")
    if isinstance(price, Mapping) and price.get("value") is not None:
        return f" (vCPU-hours at ${price['value']} per vCPU-hour, {clean(price.get('source', ''))})"
    return " (Lambda duration)" if inputs.get("memory_mb") else ""

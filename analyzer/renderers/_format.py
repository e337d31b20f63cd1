"""Number and frame formatting shared by the human-readable renderers."""

from __future__ import annotations

import unicodedata
from typing import TYPE_CHECKING, Any, Optional

from ..rules.finding import CallPath, Co2Range, Finding, FrameRef, Inputs, Sci, Setting

if TYPE_CHECKING:
    from ..report import Sampling


def clean(text: Any, limit: int = 200) -> str:
    """Frame and metadata text made safe for a terminal: no control characters, bounded length."""
    value = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    return value if len(value) <= limit else value[: limit - 1] + "…"


def count(value: Any) -> str:
    """A number with thousands separators; other values (untrusted metadata) as clean text."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:,}"
    return clean(value)


def usd(value: Optional[float]) -> str:
    """``$1,234.56``, with cents below $1 shown to the cent; ``n/a`` when unknown."""
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def kg(value: Optional[float]) -> str:
    """Kilograms with three significant figures; ``n/a`` when unknown."""
    return "n/a" if value is None else f"{value:.3g} kg"


def co2_range(value: Optional[Co2Range]) -> str:
    """``0.056 kg CO2e/month (range 0.034-0.14)``, or ``n/a``."""
    if value is None:
        return "n/a"
    return f"{value.central:.3g} kg CO2e/month (range {value.low:.2g}-{value.high:.2g})"


def percent(value: Optional[float]) -> str:
    """``12.3%``."""
    return "n/a" if value is None else f"{value:.1%}"


def setting(value: Optional[Setting], unit: str = "") -> str:
    """An input with its source: ``512 MB (profile)``."""
    if value is None:
        return "unknown"
    shown = value.value
    if isinstance(shown, float):
        shown = f"{shown:,.1f}" if shown < 1e5 else f"{shown:,.0f}"
    return f"{clean(shown)}{unit} ({value.source})"


def frame(ref: FrameRef) -> str:
    """``function (file:line)``, or the function alone when the file is unknown."""
    name = clean(ref.function or "?")
    if not ref.file:
        return name
    return f"{name} ({clean(ref.file)}:{ref.line})"


def caller(stack: CallPath) -> Optional[FrameRef]:
    """The frame that called the matching frame in an evidence call path, if any."""
    return stack.frames[-2] if len(stack.frames) >= 2 else None


def sci(value: Optional[Sci], unit: str = "invocation") -> str:
    """``3.7e-06 -> 2.8e-06 g CO2e per invocation``, or ``n/a``."""
    if value is None or value.before is None or value.after is None:
        return "n/a"
    return f"{value.before:.2g} -> {value.after:.2g} g CO2e per {unit}"


def finding_sci(finding: Finding) -> str:
    """A finding's SCI before -> after: per invocation (Lambda) or per request (services)."""
    for value, unit in ((finding.sci_g_per_invocation, "invocation"), (finding.sci_g_per_request, "request")):
        text = sci(value, unit)
        if text != "n/a":
            return text
    return "n/a"


def cost_basis(inputs: Inputs) -> str:
    """What a finding's dollars price, in parentheses with a leading space; empty when unknown."""
    price = inputs.usd_per_vcpu_hour
    if price is not None and price.value is not None:
        return f" (vCPU-hours at ${price.value} per vCPU-hour, {clean(price.source)})"
    return " (Lambda duration)" if inputs.memory_mb else ""


def rate_limited(sampling: Sampling) -> Optional[str]:
    """The sentence saying the agent's CPU budget lowered the sampling rate, or its sampler came late
    (waiting for the GIL), or None when neither happened."""
    parts = []
    reports, late = sampling.rate_limited_reports, sampling.late_reports
    if reports:
        text = f"the agent's CPU budget lowered the sampling rate in {_reports(reports)}"
        if sampling.lowest_rate_hz is not None:
            text += f" (lowest {sampling.lowest_rate_hz:.0f} Hz)"
        parts.append(text)
    if late:
        parts.append(f"the sampler waited for busy threads and sampled below the rate asked in {_reports(late)}")
    if not parts:
        return None
    text = "; ".join(parts)
    if sampling.rate_hz is not None:
        text += f"; the figures are scaled to the mean rate achieved, {sampling.rate_hz:.0f} Hz"
    return text + ", and a function seen less often than once a period may be missing"


def _reports(count: int) -> str:
    return f"{count:,} {'report' if count == 1 else 'reports'}"

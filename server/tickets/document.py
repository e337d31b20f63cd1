"""The ticket body as a small neutral document, built from one finding.

Each tracker gets it in its own format (Markdown, Atlassian Document Format, Jira wiki
markup) from the ``render_*`` modules, so every format says the same thing. Findings are
read loosely: a missing number is left out, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from .models import fingerprint_key

MAX_EVIDENCE_ITEMS = 5
MAX_STACKS_PER_ITEM = 2
MAX_FRAMES_PER_STACK = 15
MAX_TITLE_CHARS = 200
MAX_FRAME_CHARS = 300
DEFAULT_LINK_TEMPLATE = "{base}/groups/{group}/flamegraph?focus={focus}"
FENCE = re.compile(r"^```([\w+-]*)\s*$")


@dataclass(frozen=True)
class Text:
    """A run of inline text; frame names and other attacker text only ever go in here."""

    text: str
    bold: bool = False
    code: bool = False
    link: Optional[str] = None


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 3


@dataclass(frozen=True)
class Paragraph:
    parts: Tuple[Text, ...]


@dataclass(frozen=True)
class Bullets:
    items: Tuple[Tuple[Text, ...], ...]


@dataclass(frozen=True)
class Code:
    text: str
    language: str = ""


Block = Union[Heading, Paragraph, Bullets, Code]


@dataclass(frozen=True)
class TicketContent:
    """Everything a channel needs to post one finding."""

    group: str
    fingerprint: str
    key: str
    rule: str
    title: str
    blocks: Tuple[Block, ...]
    numbers: Dict[str, Optional[float]]
    finding: Mapping[str, Any]
    labels: Tuple[str, ...] = ()
    svg: Optional[str] = None
    flamegraph_url: Optional[str] = None
    extra: Dict[str, Any] = field(default_factory=dict)


def build_content(
    group: str,
    finding: Mapping[str, Any],
    *,
    labels: Sequence[str] = (),
    link_base: Optional[str] = None,
    link_template: Optional[str] = None,
    svg: Optional[str] = None,
) -> TicketContent:
    """The ticket for ``finding`` in ``group``; ``link_base`` is the server's public URL."""
    fingerprint = str(finding.get("fingerprint") or "")
    link = flamegraph_link(group, finding, link_base, link_template)
    blocks: List[Block] = []
    blocks += _what(finding)
    blocks += _where(finding)
    blocks += _why(finding)
    blocks += _fix(finding)
    blocks += _evidence(link)
    return TicketContent(
        group=group,
        fingerprint=fingerprint,
        key=fingerprint_key(group, fingerprint),
        rule=str(finding.get("rule") or "finding"),
        title=ticket_title(group, finding),
        blocks=tuple(blocks),
        numbers=numbers(finding),
        finding=finding,
        labels=tuple(dict.fromkeys(["greenflame", *labels])),
        svg=svg,
        flamegraph_url=link,
    )


def ticket_title(group: str, finding: Mapping[str, Any]) -> str:
    """One line, stable while the numbers change, so an update never renames the ticket."""
    title = " ".join(str(finding.get("title") or finding.get("rule") or "finding").split())
    text = f"greenflame: {title} in {' '.join(group.split())}"
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def numbers(finding: Mapping[str, Any]) -> Dict[str, Optional[float]]:
    """The numbers whose change may warrant an update."""
    return {
        "cost_usd_per_month": _number(finding.get("cost_usd_per_month")),
        "co2e_kg_per_month": _number(finding.get("co2e_kg_per_month")),
        "share": _number(finding.get("share")),
        "times_expected": _number(finding.get("times_expected")),
    }


def flamegraph_link(
    group: str, finding: Mapping[str, Any], base: Optional[str], template: Optional[str] = None
) -> Optional[str]:
    """The flame graph focused on the evidence's first frame, or None without a base URL."""
    if not base and not template:
        return None
    focus = next((frame_function(f) for f in evidence_frames(finding)), "")
    return (template or DEFAULT_LINK_TEMPLATE).format(
        base=(base or "").rstrip("/"),
        group=quote(group, safe=""),
        focus=quote(focus, safe=""),
        fingerprint=quote(str(finding.get("fingerprint") or ""), safe=""),
    )


# -- evidence, read loosely -------------------------------------------------


def frame_function(frame: Any) -> str:
    """The function name of a frame given as a dict, a string or anything else."""
    if isinstance(frame, Mapping):
        return str(frame.get("function") or frame.get("name") or "?")
    return str(frame)


def frame_label(frame: Any) -> str:
    """``function (file:line)`` when the file is known."""
    if not isinstance(frame, Mapping):
        return _clip(str(frame))
    where = str(frame.get("file") or "")
    line = frame.get("line")
    if where and isinstance(line, int) and line > 0:
        where = f"{where}:{line}"
    return _clip(f"{frame_function(frame)} ({where})" if where else frame_function(frame))


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_FRAME_CHARS else text[: MAX_FRAME_CHARS - 1] + "…"


def evidence_frames(finding: Mapping[str, Any]) -> List[Any]:
    """The frames the evidence points at: entry frames, else each stack's leaf."""
    found: List[Any] = []
    for item in _evidence_items(finding):
        if isinstance(item, Mapping) and ("function" in item or "name" in item):
            found.append(item)
        else:
            stacks = _stacks(item)
            if stacks and stacks[0][0]:
                found.append(stacks[0][0][-1])
    return found


def _evidence_items(finding: Mapping[str, Any]) -> List[Any]:
    items = finding.get("frames") or []
    return list(items)[:MAX_EVIDENCE_ITEMS] if isinstance(items, (list, tuple)) else []


def _stacks(item: Any) -> List[Tuple[List[Any], Optional[float]]]:
    """(frames root first, count) for each stack an evidence item carries."""
    if not isinstance(item, Mapping):
        return [([item], None)]
    stacks = item.get("stacks")
    if isinstance(stacks, (list, tuple)):
        return [pair for entry in stacks[:MAX_STACKS_PER_ITEM] for pair in _stacks(entry)]
    frames = item.get("frames") or item.get("stack")
    if isinstance(frames, (list, tuple)):
        return [(list(frames), _count(item))]
    return []


def _count(item: Mapping[str, Any]) -> Optional[float]:
    for key in ("count", "samples", "value"):
        value = _number(item.get(key))
        if value is not None:
            return value
    return None


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


# -- sections ---------------------------------------------------------------


def _what(finding: Mapping[str, Any]) -> List[Block]:
    blocks: List[Block] = [Heading("What")]
    summary = str(finding.get("summary") or finding.get("title") or "")
    if summary:
        blocks.append(Paragraph((Text(summary),)))
    share, expected = _number(finding.get("share")), _number(finding.get("expected_share"))
    times = _number(finding.get("times_expected"))
    if share is not None:
        parts = [Text("Observed share: "), Text(f"{share:.1%}", bold=True)]
        if expected is not None:
            parts.append(Text(f" (expected {expected:.1%}"))
            parts.append(Text(f", {times:.1f}x more than expected)" if times is not None else ")"))
        blocks.append(Paragraph(tuple(parts)))
    return blocks


def _where(finding: Mapping[str, Any]) -> List[Block]:
    items = _evidence_items(finding)
    if not items:
        return []
    blocks: List[Block] = [Heading("Where")]
    for item in items:
        if isinstance(item, Mapping) and ("function" in item or "name" in item):
            blocks.append(Paragraph(_entry_line(item)))
        for frames, count in _stacks(item) if not _is_bare_frame(item) else []:
            blocks.append(Code(_stack_text(frames, count)))
    return blocks


def _is_bare_frame(item: Any) -> bool:
    return isinstance(item, Mapping) and "stacks" not in item and "frames" not in item and "stack" not in item


def _entry_line(item: Mapping[str, Any]) -> Tuple[Text, ...]:
    parts = [Text(frame_label(item), code=True)]
    count, share = _count(item), _number(item.get("share"))
    if count is not None:
        parts.append(Text(f": {count:,.0f} samples"))
    if share is not None:
        parts.append(Text(f" ({share:.1%} of the scope)"))
    return tuple(parts)


def _stack_text(frames: Sequence[Any], count: Optional[float]) -> str:
    shown = list(frames)[-MAX_FRAMES_PER_STACK:]
    lines = [] if len(shown) == len(frames) else [f"... {len(frames) - len(shown)} outer frames"]
    lines += [frame_label(frame) for frame in shown]
    if count is not None:
        lines.append(f"({count:,.0f} samples)")
    return "\n".join(lines)


def _why(finding: Mapping[str, Any]) -> List[Block]:
    items: List[Tuple[Text, ...]] = []
    cost = _number(finding.get("cost_usd_per_month"))
    if cost is not None:
        items.append((Text("Cost: "), Text(f"${cost:,.2f} per month", bold=True)))
    co2e = _co2e_line(finding)
    if co2e:
        items.append(co2e)
    sci = finding.get("sci_g_per_invocation")
    if isinstance(sci, Mapping):
        before, after = _number(sci.get("before")), _number(sci.get("after"))
        if before is not None:
            tail = f" before, {after:.4g} g after the fix" if after is not None else ""
            items.append((Text("SCI: "), Text(f"{before:.4g} g CO2e per invocation{tail}")))
    if not items:
        return []
    return [Heading("Why it matters"), Bullets(tuple(items))]


def _co2e_line(finding: Mapping[str, Any]) -> Optional[Tuple[Text, ...]]:
    ranged = finding.get("co2e_kg_per_month_range")
    central = _number(finding.get("co2e_kg_per_month"))
    low = high = None
    if isinstance(ranged, Mapping):
        central = central if central is not None else _number(ranged.get("central"))
        low, high = _number(ranged.get("low")), _number(ranged.get("high"))
    if central is None:
        return None
    spread = f" (range {low:.3g} to {high:.3g})" if low is not None and high is not None else ""
    return (Text("Emissions: "), Text(f"{central:.3g} kg CO2e per month", bold=True), Text(spread))


def _fix(finding: Mapping[str, Any]) -> List[Block]:
    fix = finding.get("fix")
    if isinstance(fix, Mapping):
        text = str(fix.get("text") or fix.get("description") or "")
        code = str(fix.get("code") or fix.get("example") or "")
        blocks = _prose_and_code(text) + ([Code(code, "python")] if code else [])
    else:
        blocks = _prose_and_code(str(fix or ""))
    return [Heading("Fix"), *blocks] if blocks else []


def _prose_and_code(text: str) -> List[Block]:
    """Paragraphs and fenced code blocks from a fix written in plain text with ``` fences."""
    blocks: List[Block] = []
    prose: List[str] = []
    code: Optional[List[str]] = None
    language = ""
    for line in text.splitlines():
        fence = FENCE.match(line.strip())
        if fence and code is None:
            blocks += _paragraphs(prose)
            prose, code, language = [], [], fence.group(1)
        elif fence and code is not None:
            blocks.append(Code("\n".join(code), language or "python"))
            code = None
        elif code is not None:
            code.append(line)
        else:
            prose.append(line)
    if code is not None:
        blocks.append(Code("\n".join(code), language or "python"))
    return blocks + _paragraphs(prose)


def _paragraphs(lines: List[str]) -> List[Block]:
    chunks = "\n".join(lines).split("\n\n")
    return [Paragraph((Text(" ".join(chunk.split())),)) for chunk in chunks if chunk.strip()]


def _evidence(link: Optional[str]) -> List[Block]:
    blocks: List[Block] = []
    if link:
        blocks.append(Heading("Evidence"))
        blocks.append(Paragraph((Text("Open the flame graph focused on this evidence", link=link),)))
    blocks.append(
        Paragraph(
            (
                Text(
                    "Posted by greenflame. This ticket is updated when the numbers change, "
                    "and closed when the pattern is no longer seen."
                ),
            )
        )
    )
    return blocks

"""The ticket body as a small neutral document, built from one :class:`TicketSubject`.

Each tracker gets it in its own format (Markdown, Atlassian Document Format, Jira wiki
markup) from the ``render_*`` modules, so every format says the same thing. A number the
subject lacks is left out, never guessed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from greenflame.analyzer.rules.finding import FrameRef, Recurrence

from .models import fingerprint_key
from .subject import EvidenceStack, TicketEvidence, TicketSubject

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
    subject: TicketSubject
    labels: Tuple[str, ...] = ()
    svg: Optional[str] = None
    flamegraph_url: Optional[str] = None


def build_content(
    group: str,
    subject: TicketSubject,
    *,
    labels: Sequence[str] = (),
    link_base: Optional[str] = None,
    link_template: Optional[str] = None,
    svg: Optional[str] = None,
) -> TicketContent:
    """The ticket for ``subject`` in ``group``; ``link_base`` is the server's public URL."""
    link = flamegraph_link(group, subject, link_base, link_template)
    blocks: List[Block] = []
    blocks += _what(subject)
    blocks += _where(subject)
    blocks += _why(subject)
    blocks += _fix(subject)
    blocks += _evidence(link)
    return TicketContent(
        group=group,
        fingerprint=subject.fingerprint,
        key=fingerprint_key(group, subject.fingerprint),
        rule=subject.rule,
        title=ticket_title(group, subject),
        blocks=tuple(blocks),
        numbers=subject.numbers(),
        subject=subject,
        labels=tuple(dict.fromkeys(["greenflame", *labels])),
        svg=svg,
        flamegraph_url=link,
    )


def ticket_title(group: str, subject: TicketSubject) -> str:
    """One line, stable while the numbers change, so an update never renames the ticket."""
    title = " ".join((subject.title or subject.rule or "finding").split())
    text = f"greenflame: {title} in {' '.join(group.split())}"
    return text if len(text) <= MAX_TITLE_CHARS else text[: MAX_TITLE_CHARS - 1] + "…"


def flamegraph_link(
    group: str, subject: TicketSubject, base: Optional[str], template: Optional[str] = None
) -> Optional[str]:
    """The flame graph focused on the evidence's first frame, or None without a base URL."""
    if not base and not template:
        return None
    focus = next((item.focus.function for item in subject.evidence if item.focus is not None), "")
    return (template or DEFAULT_LINK_TEMPLATE).format(
        base=(base or "").rstrip("/"),
        group=quote(group, safe=""),
        focus=quote(focus, safe=""),
        fingerprint=quote(subject.fingerprint, safe=""),
    )


def frame_label(frame: FrameRef) -> str:
    """``function (file:line)`` when the file is known (the line when above 0)."""
    where = frame.file
    if where and frame.line > 0:
        where = f"{where}:{frame.line}"
    return _clip(f"{frame.function} ({where})" if where else frame.function)


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_FRAME_CHARS else text[: MAX_FRAME_CHARS - 1] + "…"


# -- sections ---------------------------------------------------------------


def _what(subject: TicketSubject) -> List[Block]:
    blocks: List[Block] = [Heading("What")]
    summary = subject.summary or subject.title
    if summary:
        blocks.append(Paragraph((Text(summary),)))
    share, expected, times = subject.share, subject.expected_share, subject.times_expected
    if share is not None:
        parts = [Text("Observed share: "), Text(f"{share:.1%}", bold=True)]
        if expected is not None:
            parts.append(Text(f" (expected {expected:.1%}"))
            parts.append(Text(f", {times:.1f}x more than expected)" if times is not None else ")"))
        blocks.append(Paragraph(tuple(parts)))
    return blocks


def _where(subject: TicketSubject) -> List[Block]:
    if not subject.evidence:
        return []
    blocks: List[Block] = [Heading("Where")]
    for item in subject.evidence:
        if item.entry is not None:
            blocks.append(Paragraph(_entry_line(item)))
        blocks += [Code(_stack_text(stack)) for stack in item.stacks]
    return blocks


def _entry_line(item: TicketEvidence) -> Tuple[Text, ...]:
    assert item.entry is not None
    parts = [Text(frame_label(item.entry), code=True)]
    if item.samples is not None:
        parts.append(Text(f": {item.samples:,.0f} samples"))
    if item.share is not None:
        parts.append(Text(f" ({item.share:.1%} of the scope)"))
    return tuple(parts)


def _stack_text(stack: EvidenceStack) -> str:
    frames = stack.frames
    shown = frames[-MAX_FRAMES_PER_STACK:]
    lines = [] if len(shown) == len(frames) else [f"... {len(frames) - len(shown)} outer frames"]
    lines += [frame_label(frame) for frame in shown]
    if stack.samples is not None:
        lines.append(f"({stack.samples:,.0f} samples)")
    return "\n".join(lines)


def _why(subject: TicketSubject) -> List[Block]:
    items: List[Tuple[Text, ...]] = []
    if subject.cost_usd_per_month is not None:
        items.append((Text("Cost: "), Text(f"${subject.cost_usd_per_month:,.2f} per month", bold=True)))
    co2e = _co2e_line(subject)
    if co2e:
        items.append(co2e)
    before, after = subject.sci_before, subject.sci_after
    if before is not None:
        tail = f" before, {after:.4g} g after the fix" if after is not None else ""
        items.append((Text("SCI: "), Text(f"{before:.4g} g CO2e per invocation{tail}")))
    if items:
        items += _sources(subject)
    if not items:
        return []
    return [Heading("Why it matters"), Bullets(tuple(items))]


#: The finding's inputs a ticket names, each with its source (``profile``, ``observed``, ``assumed``...).
_SOURCED_INPUTS = (
    ("invocations_per_month", "invocations per month"),
    ("requests_per_month", "requests per month"),
    ("mean_duration_ms", "mean duration (ms)"),
    ("memory_mb", "memory (MB)"),
    ("architecture", "architecture"),
    ("platform", "platform"),
    ("region", "region"),
)


def _sources(subject: TicketSubject) -> List[Tuple[Text, ...]]:
    """What the figures rest on, each input with its source, and whether the pattern recurs."""
    inputs = subject.data.get("inputs")
    parts = []
    for key, label in _SOURCED_INPUTS:
        value = inputs.get(key) if isinstance(inputs, Mapping) else None
        if isinstance(value, Mapping) and value.get("value") is not None:
            shown = value["value"]
            shown = f"{shown:,.1f}" if isinstance(shown, float) and shown < 1e5 else shown
            shown = f"{shown:,.0f}" if isinstance(shown, float) else str(shown)
            parts.append(f"{label} {_clip(shown)} ({_clip(str(value.get('source', '')))})")
    lines: List[Tuple[Text, ...]] = [(Text("Based on: "), Text("; ".join(parts)))] if parts else []
    recurrence = subject.data.get("recurrence")
    if isinstance(recurrence, Mapping):
        lines.append((Text("Recurrence: "), Text(Recurrence.from_dict(recurrence).describe())))
    return lines


def _co2e_line(subject: TicketSubject) -> Optional[Tuple[Text, ...]]:
    central, low, high = subject.co2e_central, subject.co2e_low, subject.co2e_high
    if central is None:
        return None
    spread = f" (range {low:.3g} to {high:.3g})" if low is not None and high is not None else ""
    return (Text("Emissions: "), Text(f"{central:.3g} kg CO2e per month", bold=True), Text(spread))


def _fix(subject: TicketSubject) -> List[Block]:
    blocks = _prose_and_code(subject.fix) + ([Code(subject.fix_code, "python")] if subject.fix_code else [])
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

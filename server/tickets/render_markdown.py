"""Markdown (GitHub and GitLab flavoured) for a ticket document, with a hidden fingerprint marker.

Inline text goes through the one Markdown escaper (:func:`~greenflame.analyzer.renderers.markdown_text.escape`,
shared with the analysis report) so frame names cannot inject links, HTML or @mentions; code
goes in fences longer than any backtick run inside it.
"""

from __future__ import annotations

import re
from typing import Iterable, List, Optional

from greenflame.analyzer.renderers.markdown_text import escape

from .document import Block, Bullets, Code, Heading, Paragraph, Text, TicketContent

MARKER = "<!-- greenflame:fingerprint={key} -->"
MARKER_PATTERN = re.compile(r"<!-- greenflame:fingerprint=([0-9a-f]{32}) -->")


def marker(key: str) -> str:
    """The hidden HTML comment that names the finding in a ticket body."""
    return MARKER.format(key=key)


def find_marker(body: Optional[str]) -> Optional[str]:
    """The fingerprint key from a ticket body, or None."""
    match = MARKER_PATTERN.search(body or "")
    return match.group(1) if match else None


def render(content: TicketContent, extra: Iterable[Block] = ()) -> str:
    """The ticket body: the document, any channel extras, then the marker."""
    parts = [render_block(block) for block in [*content.blocks, *extra]]
    parts.append(marker(content.key))
    return "\n\n".join(parts) + "\n"


def render_block(block: Block) -> str:
    """One block as Markdown."""
    if isinstance(block, Heading):
        return "#" * max(1, min(6, block.level)) + " " + escape(block.text)
    if isinstance(block, Paragraph):
        return inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join("- " + inline(item) for item in block.items)
    if isinstance(block, Code):
        return code_block(block.text, block.language)
    raise TypeError(f"unknown block {block!r}")


def inline(parts: Iterable[Text]) -> str:
    """Inline runs, each escaped or in a code span."""
    out: List[str] = []
    for part in parts:
        text = code_span(part.text) if part.code else escape(part.text)
        if part.bold:
            text = f"**{text}**"
        if part.link:
            text = f"[{text}](<{part.link.replace('>', '%3E')}>)"
        out.append(text)
    return "".join(out)


def code_span(text: str) -> str:
    """A code span that survives backticks inside."""
    text = " ".join(text.split())
    fence = "`" * (_longest_run(text, "`") + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def code_block(text: str, language: str = "") -> str:
    """A fenced code block longer than any backtick run inside."""
    fence = "`" * max(3, _longest_run(text, "`") + 1)
    language = re.sub(r"[^\w+-]", "", language)
    return f"{fence}{language}\n{text}\n{fence}"


def plain(text: str) -> str:
    """A comment: escaped paragraphs."""
    return "\n\n".join(escape(chunk) for chunk in text.split("\n\n") if chunk.strip())


def _longest_run(text: str, char: str) -> int:
    runs = re.findall(re.escape(char) + "+", text)
    return max((len(run) for run in runs), default=0)

"""Jira wiki markup (Jira Server / Data Center REST v2) for a ticket document.

Inline text has wiki's special characters backslash-escaped and its bare URLs, e-mail
addresses and ``[~user]`` mentions broken by the Markdown escaper's
:func:`~greenflame.analyzer.renderers.markdown_text.defuse`; stacks and code go in
``{noformat}`` / ``{code}`` blocks whose closing tag cannot be forged from inside.
"""

from __future__ import annotations

import re
from typing import Iterable, List

from greenflame.analyzer.renderers.markdown_text import defuse

from .document import Block, Bullets, Code, Heading, Paragraph, Text, TicketContent

SPECIAL = re.compile(r"([\\*_?\-+^~|\[\]{}!#@()])")
LANGUAGE = re.compile(r"^[a-z0-9]+$")


def render(content: TicketContent, extra: Iterable[Block] = ()) -> str:
    """The description in wiki markup."""
    return "\n\n".join(render_block(block) for block in [*content.blocks, *extra]) + "\n"


def render_block(block: Block) -> str:
    """One block as wiki markup."""
    if isinstance(block, Heading):
        return f"h{max(1, min(6, block.level))}. {escape(block.text)}"
    if isinstance(block, Paragraph):
        return inline(block.parts)
    if isinstance(block, Bullets):
        return "\n".join("* " + inline(item) for item in block.items)
    if isinstance(block, Code):
        return code_block(block.text, block.language)
    raise TypeError(f"unknown block {block!r}")


def inline(parts: Iterable[Text]) -> str:
    """Inline runs: escaped text, ``{{monospace}}``, ``*bold*`` and ``[text|url]`` links."""
    out: List[str] = []
    for part in parts:
        text = escape(part.text)
        if part.code:
            text = "{{" + text + "}}"
        elif part.bold:
            text = f"*{text}*"
        if part.link:
            text = f"[{text}|{part.link.replace('|', '%7C').replace(']', '%5D')}]"
        out.append(text)
    return "".join(out)


def escape(text: str) -> str:
    """Plain text that wiki markup shows as typed (plus invisible word joiners), never a link."""
    return SPECIAL.sub(r"\\\1", defuse(" ".join(text.split())))


def code_block(text: str, language: str = "") -> str:
    """``{code:lang}`` for code, ``{noformat}`` otherwise; inner closing tags are defused."""
    safe = re.sub(r"\{(code|noformat)", "{\u200b\\1", text, flags=re.IGNORECASE)
    if language and LANGUAGE.match(language.lower()):
        return f"{{code:{language.lower()}}}\n{safe}\n{{code}}"
    return f"{{noformat}}\n{safe}\n{{noformat}}"


def plain(text: str) -> str:
    """A comment: escaped paragraphs."""
    return "\n\n".join(escape(chunk) for chunk in text.split("\n\n") if chunk.strip())

"""One escaper for attacker-controlled text in GitHub- and GitLab-flavoured Markdown.

Frame names, file names, titles and notes come from profiled programs and the network: the
report renderer (:mod:`.markdown`) and the ticket bodies (``server/tickets/render_markdown``)
both pass every such string through :func:`escape` before it reaches Markdown. Text that must
keep its exact characters goes in code spans or fences instead.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Optional

#: Characters that start inline markup or a block (emphasis, code, links and images, tables,
#: strikethrough, headings, list items, GitLab references), escaped with a backslash.
SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~])")
#: A block marker at the start of a line that the characters above leave open: a list item
#: (``- x``, ``1. x``), a thematic break (``---``) or a setext underline (``==``); its last
#: character is escaped too.
LEADING = re.compile(r"^(\d{1,9}\.|-|=)(?=\s|[-=\s]*$)")
#: Characters replaced by entities: HTML, and ``@`` so that no mention is typed.
ENTITIES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ("@", "&#64;"))


def one_line(text: Any, limit: Optional[int] = None) -> str:
    """``text`` on one line: control and format characters (bidi overrides, zero-width joiners,
    newlines) become spaces, runs of whitespace one space; cut to ``limit`` characters with an
    ellipsis when given."""
    value = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    value = " ".join(value.split())
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def _escape_last(match: re.Match) -> str:
    marker = match.group(0)
    return f"{marker[:-1]}\\{marker[-1]}"


def escape(text: Any, limit: Optional[int] = None) -> str:
    """Plain text that Markdown shows as typed, on one line: no markup, no HTML, no @mentions."""
    value = LEADING.sub(_escape_last, SPECIAL.sub(r"\\\1", one_line(text, limit)))
    for char, entity in ENTITIES:
        value = value.replace(char, entity)
    return value

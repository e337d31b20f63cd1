"""One escaper for attacker-controlled text in GitHub- and GitLab-flavoured Markdown.

Frame names, file names, titles and notes come from profiled programs and the network: the
report renderer (:mod:`.markdown`) and the ticket bodies (``server/tickets/render_markdown``)
both pass every such string through :func:`escape` before it reaches Markdown. Text that must
keep its exact characters goes in code spans or fences instead.

Trackers also turn plain text into links and notifications: GitHub's autolinks (``https://``,
``www.``, e-mail addresses), ``@user`` mentions and ``#123`` / ``GH-1`` references, GitLab's
``!1``, ``~label``, ``&1``, ``%milestone`` and the same URLs, Jira's bare URLs and e-mail
addresses. Several of them act on the rendered text, after Markdown escapes are gone, so
:func:`defuse` puts an invisible word joiner (U+2060) inside each such pattern instead: the text
reads the same, no pattern matches. Jira's wiki renderer uses it too.
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
#: Invisible, not whitespace: it splits a pattern without splitting the word on screen.
WORD_JOINER = "\u2060"
#: Where a tracker would start a link, mention or reference: between ``:`` and ``//`` (any
#: scheme), before the ``:`` of the schemes that need no ``//``, between ``www`` and ``.``,
#: after a reference sigil followed by a word character, and inside ``GH-`` + digits. GitLab's
#: ``$123`` snippet references are left alone: they neither notify nor cross-reference, and
#: amounts such as ``$0.18`` must read (and copy) as typed.
TRIGGER = re.compile(
    r"(?<=:)(?=//)"
    r"|(?i:(?<=mailto)|(?<=xmpp))(?=:)"
    r"|(?i:(?<=www))(?=\.)"
    r"|(?<=[@#!~%&])(?=\w)"
    r"|(?i:(?<=\bGH-))(?=\d)"
)


def one_line(text: Any, limit: Optional[int] = None) -> str:
    """``text`` on one line: control and format characters (bidi overrides, zero-width joiners,
    newlines) become spaces, runs of whitespace one space; cut to ``limit`` characters with an
    ellipsis when given."""
    value = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    value = " ".join(value.split())
    if limit is not None and len(value) > limit:
        value = value[: limit - 1] + "…"
    return value


def defuse(text: str) -> str:
    """``text`` with a word joiner inside every autolink, mention and reference pattern."""
    return TRIGGER.sub(WORD_JOINER, text)


def _escape_last(match: re.Match) -> str:
    marker = match.group(0)
    return f"{marker[:-1]}\\{marker[-1]}"


def escape(text: Any, limit: Optional[int] = None) -> str:
    """Plain text that Markdown shows as typed (plus invisible word joiners), on one line: no
    markup, no HTML, no links, mentions or references."""
    value = LEADING.sub(_escape_last, SPECIAL.sub(r"\\\1", defuse(one_line(text, limit))))
    for char, entity in ENTITIES:
        value = value.replace(char, entity)
    return value

"""Ticket bodies built from a hostile finding: no attacker text becomes a link, mention or reference.

Markdown is rendered with cmark-gfm (GitHub's own renderer, autolink extension on) and the
rendered text is searched for the patterns GitHub and GitLab turn into mentions and references
after rendering; Jira wiki markup is searched for its link and mention syntax outside the
blocks it shows verbatim; ADF is walked for link marks.
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from support.paths import TRACKERS

sys.path.insert(0, str(TRACKERS))

from findings import finding

from greenflame.server.tickets import render_adf, render_markdown, render_wiki
from greenflame.server.tickets.document import TicketContent, build_content
from greenflame.server.tickets.subject import TicketSubject

OURS = "https://greenflame.example.com"
#: Text each tracker would turn into a link, a mention or a reference if it were left alone.
HOSTILE = (
    "https://evil.example/phish www.evil.example/x WWW.EVIL.example HTTP://EVIL.example/a "
    "ftp://evil.example/f mailto:x@evil.example user@evil.example xmpp:a@evil.example "
    "<https://evil.example/angle> [click](https://evil.example/md) [text|https://evil.example/wiki] "
    "@someone @org/team #123 org/repo#9 GH-1 gh-2 !1 ~label &3 %v1 [~admin] [~accountid:5b10]"
)
#: What GitHub, GitLab or Jira would act on in rendered text (outside code).
TRIGGERS = {
    "url": re.compile(r"[a-z][a-z0-9+.-]*://", re.IGNORECASE),
    "www": re.compile(r"www\.", re.IGNORECASE),
    "email or scheme": re.compile(r"\w@\w|(mailto|xmpp):", re.IGNORECASE),
    "mention": re.compile(r"@\w"),
    "reference": re.compile(r"[#!~&%]\w|GH-\d", re.IGNORECASE),
}


def hostile_content() -> TicketContent:
    frame = {"function": "handler " + HOSTILE, "file": "/task/" + HOSTILE + ".py", "line": 3}
    data = finding(
        title="t " + HOSTILE,
        summary="s " + HOSTILE,
        frames=[{"frames": [frame, HOSTILE], "count": 7}],
        fix="Do this " + HOSTILE + "\n\n```python\nprint(1)\n```\n\nthen " + HOSTILE,
    )
    data["inputs"] = {"region": {"value": HOSTILE, "source": HOSTILE}}
    return build_content("g " + HOSTILE, TicketSubject.from_mapping(data), link_base=OURS)


def _matches(text: str) -> List[Tuple[str, str]]:
    return [(name, match.group(0)) for name, pattern in TRIGGERS.items() for match in pattern.finditer(text)]


class _Rendered(HTMLParser):
    """Links (``<a href>``) and the text a tracker post-processes (outside code and links)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: List[Dict[str, Any]] = []
        self.text: List[str] = []
        self._inert = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "a":
            self.links.append(dict(attrs))
        if tag in {"a", "code", "pre"}:
            self._inert += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in {"a", "code", "pre"}:
            self._inert -= 1

    def handle_data(self, data: str) -> None:
        if not self._inert:
            self.text.append(data)


def test_the_hostile_text_would_link_and_mention_unescaped() -> None:
    """The check below can fail: the raw text gives many links and every kind of trigger."""
    cmarkgfm = pytest.importorskip("cmarkgfm")
    rendered = _Rendered()
    rendered.feed(cmarkgfm.github_flavored_markdown_to_html(HOSTILE))
    assert len(rendered.links) >= 8
    found = {name for name, _ in _matches(HOSTILE)}
    assert found == set(TRIGGERS)


def test_markdown_body_links_only_to_our_server() -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    content = hostile_content()
    rendered = _Rendered()
    rendered.feed(cmarkgfm.github_flavored_markdown_to_html(render_markdown.render(content)))
    assert [link.get("href") for link in rendered.links] == [content.flamegraph_url]
    assert content.flamegraph_url and content.flamegraph_url.startswith(OURS + "/groups/")
    assert not any("user-mention" in str(link.get("class")) for link in rendered.links)
    text = "".join(rendered.text)
    assert "evil.example" in text and "someone" in text  # the text is there, only inert
    assert _matches(text) == []


def test_markdown_comment_is_inert_too() -> None:
    cmarkgfm = pytest.importorskip("cmarkgfm")
    rendered = _Rendered()
    rendered.feed(cmarkgfm.github_flavored_markdown_to_html(render_markdown.plain(HOSTILE + "\n\n" + HOSTILE)))
    assert rendered.links == [] and _matches("".join(rendered.text)) == []


VERBATIM = re.compile(r"\{(noformat|code(:\w+)?)\}\n.*?\n\{(noformat|code)\}", re.DOTALL)
WIKI_LINK = re.compile(r"(?<!\\)\[(?P<body>(?:\\.|[^\]\\])*)(?<!\\)\]")


def _wiki_prose(wiki: str) -> str:
    """Wiki markup outside ``{noformat}`` and ``{code}`` blocks (Jira shows those verbatim)."""
    return VERBATIM.sub("", wiki)


def test_wiki_body_links_only_to_our_server() -> None:
    content = hostile_content()
    prose = _wiki_prose(render_wiki.render(content))
    links = [match.group("body") for match in WIKI_LINK.finditer(prose)]
    assert links == [f"Open the flame graph focused on this evidence|{content.flamegraph_url}"]
    outside = WIKI_LINK.sub("", prose)
    assert "evil.example" in outside and "someone" in outside
    assert _matches(outside.replace("\\", "")) == []


def test_wiki_comment_is_inert_too() -> None:
    prose = render_wiki.plain(HOSTILE)
    assert WIKI_LINK.search(prose) is None and _matches(prose.replace("\\", "")) == []


def _marks(node: Any) -> Iterator[Dict[str, Any]]:
    if isinstance(node, dict):
        yield from node.get("marks", [])
        for child in node.get("content", []):
            yield from _marks(child)


def test_adf_body_links_only_to_our_server() -> None:
    content = hostile_content()
    links = [mark for mark in _marks(render_adf.render(content)) if mark["type"] == "link"]
    assert links == [{"type": "link", "attrs": {"href": content.flamegraph_url}}]
    assert [mark for mark in _marks(render_adf.plain(HOSTILE)) if mark["type"] == "link"] == []

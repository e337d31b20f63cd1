"""Atlassian Document Format (Jira Cloud REST v3) for a ticket document.

ADF is JSON, so text needs no escaping; it only forbids empty text nodes and mixing the
``code`` mark with anything but ``link``.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List

from .document import Block, Bullets, Code, Heading, Paragraph, Text, TicketContent

Node = Dict[str, Any]


def render(content: TicketContent, extra: Iterable[Block] = ()) -> Node:
    """The description document."""
    return document([*content.blocks, *extra])


def document(blocks: Iterable[Block]) -> Node:
    """An ADF ``doc`` node holding ``blocks``."""
    return {"version": 1, "type": "doc", "content": [node for block in blocks for node in block_nodes(block)]}


def plain(text: str) -> Node:
    """A comment body: one paragraph per blank-line separated chunk."""
    chunks = [chunk for chunk in text.split("\n\n") if chunk.strip()]
    return document([Paragraph((Text(" ".join(chunk.split())),)) for chunk in chunks])


def block_nodes(block: Block) -> List[Node]:
    """One block as ADF nodes (none when it would be empty)."""
    if isinstance(block, Heading):
        texts = _texts([Text(block.text)])
        return [{"type": "heading", "attrs": {"level": max(1, min(6, block.level))}, "content": texts}] if texts else []
    if isinstance(block, Paragraph):
        texts = _texts(block.parts)
        return [{"type": "paragraph", "content": texts}] if texts else []
    if isinstance(block, Bullets):
        items = [_list_item(item) for item in block.items if _texts(item)]
        return [{"type": "bulletList", "content": items}] if items else []
    if isinstance(block, Code):
        node: Node = {"type": "codeBlock", "attrs": {"language": block.language or "text"}}
        if block.text:
            node["content"] = [{"type": "text", "text": block.text}]
        return [node]
    raise TypeError(f"unknown block {block!r}")


def _list_item(parts: Iterable[Text]) -> Node:
    return {"type": "listItem", "content": [{"type": "paragraph", "content": _texts(parts)}]}


def _texts(parts: Iterable[Text]) -> List[Node]:
    nodes: List[Node] = []
    for part in parts:
        text = " ".join(part.text.split()) if not part.code else part.text
        if not text:
            continue
        marks: List[Node] = []
        if part.code:
            marks.append({"type": "code"})
        elif part.bold:
            marks.append({"type": "strong"})
        if part.link:
            marks.append({"type": "link", "attrs": {"href": part.link}})
        node: Node = {"type": "text", "text": text}
        if marks:
            node["marks"] = marks
        nodes.append(node)
    return nodes

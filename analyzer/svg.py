"""Static SVG flame graphs, for tickets, pull requests and files: no script, no external resource.

:func:`render_svg` draws a profile (or a call tree) root at the bottom, one rectangle per
call path, with each frame's name truncated to fit and a ``<title>`` tooltip giving its
file, line, value and share. Frames named in ``highlight`` (a finding's evidence) and the
calls under them are drawn in blue, everything else in warm colours. The drawing is bounded:
the tree is pruned to ``max_nodes`` with explicit "other" nodes (see :func:`tree.prune`),
rectangles narrower than half a pixel are left out, and every name is cut to
:data:`MAX_NAME_CHARS`. Frame names are attacker-controlled text: every piece of text is
XML-escaped and stripped of characters XML cannot carry, never put in CDATA or markup.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Any, Callable, Iterable, List, Optional, Union

from .model import CPU, Frame, Profile
from .rules.finding import Finding, FrameRef
from .tree import OTHER_FRAME, ROOT_FRAME, Node, build_tree, choose_sample_type, prune

DEFAULT_WIDTH = 1200
MIN_WIDTH = 200
MAX_WIDTH = 10_000
#: Nodes drawn at most (before pruning to "other" nodes): about 250 bytes each.
DEFAULT_MAX_NODES = 2000
#: Nodes in an evidence flame graph made from a finding.
EVIDENCE_MAX_NODES = 300
#: Longest frame name kept in tooltips and labels.
MAX_NAME_CHARS = 300
FRAME_HEIGHT = 16
FONT_SIZE = 12
#: Width of one character of a 12 px monospace font (0.6 em), used to truncate labels.
CHAR_WIDTH = 7.2
PAD = 10
HEADER = 44
#: Rectangles narrower than this many pixels are not drawn (their parent's width covers them).
MIN_RECT_PX = 0.5

HIGHLIGHT_FILL = "rgb(70,140,235)"
HIGHLIGHT_INNER_FILL = "rgb(150,195,250)"
OTHER_FILL = "rgb(200,200,200)"

# XML 1.0 allows tab, newline, carriage return and these ranges; anything else is replaced.
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: A frame to highlight: a profile Frame, a finding's FrameRef, or a bare function name.
FrameSpec = Union[Frame, FrameRef, str]


def xml_text(value: Any, limit: int = MAX_NAME_CHARS) -> str:
    """``value`` as XML character data safe in text and in double-quoted attributes."""
    text = _NOT_XML.sub("\ufffd", str(value))
    if len(text) > limit:
        text = text[: limit - 1] + "\u2026"
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def highlighter(specs: Iterable[FrameSpec]) -> Callable[[Frame], bool]:
    """A predicate matching frames named by ``specs``.

    A frame reference with a file matches that function in that file (at that line when the
    line is not 0); a string or a reference without a file matches the function name anywhere.
    """
    exact = set()
    names = set()
    for spec in specs:
        if isinstance(spec, Frame):
            exact.add(spec)
        elif isinstance(spec, str):
            names.add(spec)
        elif spec.file:
            exact.add(spec.to_frame())
        else:
            names.add(spec.function)
    loose = {(f.function, f.file) for f in exact if f.line == 0}

    def matches(frame: Frame) -> bool:
        return frame in exact or frame.function in names or (frame.function, frame.file) in loose

    return matches


@dataclass
class _Box:
    node: Node
    x: float
    width: float
    depth: int
    hit: bool
    inside: bool


def render_svg(
    source: Union[Profile, Node],
    *,
    sample_type: Optional[str] = None,
    title: Optional[str] = None,
    highlight: Iterable[FrameSpec] = (),
    width: int = DEFAULT_WIDTH,
    max_nodes: int = DEFAULT_MAX_NODES,
) -> str:
    """A standalone SVG flame graph of ``source`` (a profile or a call tree rooted at ``all``).

    For a profile, ``sample_type`` defaults to ``cpu`` when it has CPU samples, else
    ``wall``; for a tree it only labels the values. ``highlight`` names the evidence frames.
    Raises ValueError for a width outside 200-10,000 px or ``max_nodes`` below 2.
    """
    if not MIN_WIDTH <= width <= MAX_WIDTH:
        raise ValueError(f"width {width} is outside {MIN_WIDTH}-{MAX_WIDTH} px")
    if isinstance(source, Profile):
        used = choose_sample_type(source, sample_type or CPU)
        tree = build_tree(source, used) if source.has_type(used) else Node(ROOT_FRAME)
        unit = source.sample_types[source.value_index(used)].unit if source.has_type(used) else "samples"
        default_title = f"{source.group or 'profile'}: {used}"
    else:
        used, tree, unit = sample_type or "samples", source, "samples"
        default_title = f"flame graph: {used}"
    pruned = prune(tree, max_nodes)
    boxes = _layout(pruned, width, highlighter(highlight))
    return _document(boxes, pruned, width, title or default_title, _subtitle(pruned, boxes, used, unit))


def _layout(tree: Node, width: int, matches: Callable[[Frame], bool]) -> List[_Box]:
    """Boxes in drawing order (parents before children), x and width in pixels."""
    scale = (width - 2 * PAD) / tree.total if tree.total > 0 else 0.0
    root = _Box(tree, PAD, width - 2 * PAD, 0, False, False)
    boxes = [root]
    pending = [root]
    while pending:
        parent = pending.pop()
        x = parent.x
        for child in parent.node.sorted_children():
            child_width = child.total * scale
            hit = matches(child.frame)
            box = _Box(child, x, child_width, parent.depth + 1, hit, parent.hit or parent.inside)
            x += child_width
            if child_width >= MIN_RECT_PX:
                boxes.append(box)
                pending.append(box)
    return boxes


def _subtitle(tree: Node, boxes: List[_Box], sample_type: str, unit: str) -> str:
    text = f"{sample_type}: {tree.total:,} {unit}"
    if tree.total <= 0:
        return text + " (nothing to draw)"
    hit_total = sum(b.node.total for b in boxes if b.hit and not b.inside)
    if any(b.hit for b in boxes):
        text += f"; highlighted (blue): evidence frames, {hit_total / tree.total:.1%}"
    pruned = sum(node.pruned for node in tree.walk())
    if pruned:
        text += f"; {pruned:,} small nodes merged into 'other'"
    return text


def _document(boxes: List[_Box], tree: Node, width: int, title: str, subtitle: str) -> str:
    depth = max(b.depth for b in boxes)
    height = HEADER + (depth + 1) * FRAME_HEIGHT + PAD
    bottom = height - PAD - FRAME_HEIGHT
    parts = [
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-labelledby="gf-title" '
        f'font-family="Menlo, Consolas, \'DejaVu Sans Mono\', monospace" font-size="{FONT_SIZE}">',
        f'<title id="gf-title">{xml_text(title)}</title>',
        f'<rect x="0" y="0" width="{width}" height="{height}" fill="rgb(250,250,247)"/>',
        f'<text x="{PAD}" y="20" font-size="15" font-weight="bold">{_fit(title, width - 2 * PAD)}</text>',
        f'<text x="{PAD}" y="36" fill="rgb(80,80,80)">{_fit(subtitle, width - 2 * PAD)}</text>',
    ]
    parts += [_frame(box, bottom - box.depth * FRAME_HEIGHT, tree.total) for box in boxes]
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _frame(box: _Box, y: float, total: int) -> str:
    node = box.node
    name = "all" if node.frame == ROOT_FRAME and box.depth == 0 else node.frame.function
    share = node.total / total if total > 0 else 0.0
    tip = f"{_describe(node)}\n{node.total:,} ({share:.2%}), self {node.self_value:,}"
    label = _fit(name, box.width - 6)
    text = f'<text x="{box.x + 3:.1f}" y="{y + FRAME_HEIGHT - 4:.1f}">{label}</text>' if label else ""
    stroke = ' stroke="rgb(20,60,140)" stroke-width="0.8"' if box.hit else ""
    return (
        f"<g><title>{xml_text(tip, 2 * MAX_NAME_CHARS)}</title>"
        f'<rect x="{box.x:.1f}" y="{y:.1f}" width="{max(box.width - 0.5, 0.1):.1f}" height="{FRAME_HEIGHT - 1}" '
        f'rx="2" fill="{_fill(box)}"{stroke}/>{text}</g>'
    )


def _describe(node: Node) -> str:
    frame = node.frame
    if node.pruned and frame.function == OTHER_FRAME.function:
        return f"other: {node.pruned:,} smaller call paths merged"
    if not frame.file:
        return frame.function
    return f"{frame.function} ({frame.file}:{frame.line})"


def _fit(text: str, pixels: float) -> str:
    """``text`` escaped and cut to fit ``pixels``; empty when fewer than 3 characters fit."""
    chars = int(pixels // CHAR_WIDTH)
    if chars < 3:
        return ""
    if len(text) > chars:
        text = text[: chars - 2] + ".."
    return xml_text(text)


def _fill(box: _Box) -> str:
    if box.hit:
        return HIGHLIGHT_FILL
    if box.inside:
        return HIGHLIGHT_INNER_FILL
    if box.node.pruned:
        return OTHER_FILL
    # Warm colours, stable for a name across runs and machines (crc32, not hash()).
    seed = zlib.crc32(box.node.frame.function.encode("utf-8", "replace"))
    red = 205 + seed % 51
    green = (seed >> 8) % 200 + 20
    blue = (seed >> 16) % 56
    return f"rgb({red},{green},{blue})"


def evidence_tree(finding: Finding) -> Node:
    """A call tree of a finding's evidence: its call paths into the matching frames, with values.

    Findings keep each entry frame's heaviest call paths (root first, ending at the entry
    frame) under ``frames[i].stacks``; values not covered by those paths are left out.
    """
    root = Node(ROOT_FRAME)
    for item in finding.frames:
        for stack in item.stacks:
            value = stack.samples
            if value <= 0:
                continue
            node = root
            root.total += value
            for ref in stack.frames:
                node = node.child(ref.to_frame())
                node.total += value
            node.self_value += value
    return root


def evidence_svg(finding: Finding, profile: Optional[Profile] = None, *, width: int = DEFAULT_WIDTH) -> str:
    """The flame graph of a finding's evidence, its matching frames highlighted.

    With the ``profile`` the finding came from, every stack through a matching frame is
    drawn (with the calls under it); without it, the call paths the finding lists.
    """
    frames = [item.frame for item in finding.frames]
    title = f"{finding.rule}: {finding.title}".rstrip(": ")
    sample_type = finding.sample_type or CPU
    if profile is None:
        return render_svg(
            evidence_tree(finding),
            sample_type=sample_type,
            title=title,
            highlight=frames,
            width=width,
            max_nodes=EVIDENCE_MAX_NODES,
        )
    matches = highlighter(frames)
    used = choose_sample_type(profile, sample_type)
    tree = Node(ROOT_FRAME)
    if profile.has_type(used):
        tree = build_tree(profile, used, keep=lambda stack, _labels: any(matches(f) for f in stack))
    return render_svg(tree, sample_type=used, title=title, highlight=frames, width=width, max_nodes=EVIDENCE_MAX_NODES)

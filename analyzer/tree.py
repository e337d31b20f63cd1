"""Call trees built from a profile, and pure tree-to-tree processors over them.

A tree is a :class:`Node` whose children are keyed by frame, so every call into the
same function under the same parent shares one node. ``total`` is the value of every
sample whose stack passes through the node; ``self_value`` the value of samples
that stop at it, so ``total == self_value + sum(child.total)`` holds everywhere.

Processors take a tree and return a new one, leaving their input unchanged, so they
compose: ``prune(build_tree(profile, "cpu"), 500)``.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Tuple

from .model import CPU, WALL, Frame, Profile

ROOT_FRAME = Frame("all")
OTHER_FRAME = Frame("other")

#: A sample filter: ``(frames root first, labels) -> keep?``.
SampleFilter = Callable[[Tuple[Frame, ...], Mapping[str, str]], bool]
#: A processor: a pure function from one tree to another.
Processor = Callable[["Node"], "Node"]


@dataclass
class Node:
    """One frame at one call path, with its inclusive and exclusive values."""

    frame: Frame
    self_value: int = 0
    total: int = 0
    children: Dict[Frame, Node] = field(default_factory=dict)
    #: For an "other" node made by :func:`prune`: how many nodes it stands for.
    pruned: int = 0

    def child(self, frame: Frame) -> Node:
        """The child for ``frame``, created empty if absent."""
        node = self.children.get(frame)
        if node is None:
            node = self.children[frame] = Node(frame)
        return node

    def sorted_children(self) -> List[Node]:
        """Children by total descending, then by name for a stable order."""
        return sorted(self.children.values(), key=lambda n: (-n.total, n.frame.function, n.frame.file, n.frame.line))

    def walk(self) -> Iterable[Node]:
        """Every node of the tree, this one first (iterative: deep stacks are fine)."""
        pending = [self]
        while pending:
            node = pending.pop()
            yield node
            pending.extend(node.children.values())

    def count(self) -> int:
        """Number of nodes in the tree, this one included."""
        return sum(1 for _ in self.walk())


def choose_sample_type(profile: Profile, wanted: str = CPU) -> str:
    """``wanted`` if the profile has samples of it, else ``wall``, else its first type.

    A profile with no samples at all keeps ``wanted`` when it has that type.
    """
    candidates = [wanted, WALL] + [t.name for t in profile.sample_types]
    present = [name for name in candidates if profile.has_type(name)]
    for name in present:
        if profile.total(name) > 0:
            return name
    return present[0] if present else wanted


def build_tree(profile: Profile, sample_type: str, keep: Optional[SampleFilter] = None) -> Node:
    """The top-down call tree of ``sample_type`` (samples failing ``keep`` are left out)."""
    column = profile.value_index(sample_type)
    root = Node(ROOT_FRAME)
    frames = profile.frames
    # Build on frame indices first (cheap to hash), then translate once per node.
    by_id: Dict[int, Any] = {}
    root_self = 0
    for sample in profile.samples:
        value = sample.values[column]
        if not value:
            continue
        if keep is not None and not keep(tuple(frames[i] for i in sample.stack), sample.labels):
            continue
        if not sample.stack:
            root_self += value
            continue
        level = by_id
        for position, index in enumerate(sample.stack):
            entry = level.get(index)
            if entry is None:
                entry = level[index] = [0, 0, {}]
            entry[0] += value
            if position == len(sample.stack) - 1:
                entry[1] += value
            level = entry[2]
    root.self_value = root_self
    _attach(root, by_id, frames)
    root.total = root.self_value + sum(child.total for child in root.children.values())
    return root


def _attach(root: Node, by_id: Dict[int, Any], frames: List[Frame]) -> None:
    pending: List[Tuple[Node, Dict[int, Any]]] = [(root, by_id)]
    while pending:
        parent, level = pending.pop()
        for index, (total, self_value, children) in level.items():
            node = parent.child(frames[index])
            # Two indices may hold equal frames in a hand-built profile: add, do not replace.
            node.total += total
            node.self_value += self_value
            pending.append((node, children))


def prune(tree: Node, max_nodes: int) -> Node:
    """A copy of ``tree`` with at most ``max_nodes`` nodes, the largest totals kept.

    Under each parent that lost children, one node named ``other`` carries their
    summed total as its self value, so no sample is silently lost; ``other`` nodes
    count towards ``max_nodes``.
    """
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2 (the root and one 'other' node), got {max_nodes}")
    copy = Node(tree.frame, tree.self_value, tree.total)
    kept_children: Dict[int, int] = {id(tree): 0}
    needs_other = 1 if tree.children else 0
    kept = 1
    order = 0
    heap: List[Tuple[int, int, Node, Node]] = []

    def offer(parent_copy: Node, node: Node) -> None:
        nonlocal order
        for child in node.sorted_children():
            heapq.heappush(heap, (-child.total, order, child, parent_copy))
            order += 1

    offer(copy, tree)
    originals: Dict[int, Node] = {id(copy): tree}
    while heap:
        _, _, node, parent_copy = heap[0]
        parent = originals[id(parent_copy)]
        leaves_parent_complete = kept_children[id(parent)] + 1 == len(parent.children)
        after = kept + 1 + needs_other - (1 if leaves_parent_complete else 0) + (1 if node.children else 0)
        if after > max_nodes:
            break
        heapq.heappop(heap)
        node_copy = parent_copy.child(node.frame)
        node_copy.self_value, node_copy.total = node.self_value, node.total
        originals[id(node_copy)] = node
        kept_children[id(parent)] += 1
        kept_children[id(node)] = 0
        kept += 1
        needs_other += (1 if node.children else 0) - (1 if leaves_parent_complete else 0)
        offer(node_copy, node)
    _add_other_nodes(copy, originals)
    return copy


def _add_other_nodes(copy: Node, originals: Dict[int, Node]) -> None:
    for node_copy in list(copy.walk()):
        original = originals[id(node_copy)]
        missing = [child for frame, child in original.children.items() if frame not in node_copy.children]
        if not missing:
            continue
        lost = sum(child.total for child in missing)
        other = Node(OTHER_FRAME, self_value=lost, total=lost, pruned=sum(child.count() for child in missing))
        if OTHER_FRAME in node_copy.children:  # a real frame called "other": keep both apart
            other = Node(Frame("other", "<pruned>"), lost, lost, pruned=other.pruned)
        node_copy.children[other.frame] = other


def to_dict(tree: Node) -> Dict[str, Any]:
    """Nested JSON-ready dicts: name, file, line, self, total, children (by total descending)."""
    result = _node_dict(tree)
    pending = [(tree, result)]
    while pending:
        node, out = pending.pop()
        for child in node.sorted_children():
            child_out = _node_dict(child)
            out["children"].append(child_out)
            pending.append((child, child_out))
    return result


def _node_dict(node: Node) -> Dict[str, Any]:
    out: Dict[str, Any] = {
        "name": node.frame.function,
        "file": node.frame.file,
        "line": node.frame.line,
        "self": node.self_value,
        "total": node.total,
        "children": [],
    }
    if node.pruned:
        out["pruned_nodes"] = node.pruned
    return out


def flamegraph(profile: Profile, sample_type: str = CPU, max_nodes: int = 5000) -> Dict[str, Any]:
    """The flame graph of ``profile`` as nested dicts, rooted at ``all``, pruned to ``max_nodes``.

    When ``sample_type`` has no samples the wall type is used instead; the root's
    ``sample_type`` key says which type the values count, and ``unit`` their unit.
    """
    used = choose_sample_type(profile, sample_type)
    if not profile.has_type(used):
        tree = Node(ROOT_FRAME)
        unit = "samples"
    else:
        tree = prune(build_tree(profile, used), max_nodes)
        unit = profile.sample_types[profile.value_index(used)].unit
    result = to_dict(tree)
    result["sample_type"] = used
    result["unit"] = unit
    return result


def hotspots(profile: Profile, sample_type: str = CPU, limit: int = 20) -> List[Dict[str, Any]]:
    """Bottom-up view: frames by self value, with their total (counted once per stack)."""
    used = choose_sample_type(profile, sample_type)
    if not profile.has_type(used):
        return []
    self_by: Dict[Frame, int] = {}
    total_by: Dict[Frame, int] = {}
    for frames, value, _ in profile.stacks(used):
        if frames:
            self_by[frames[-1]] = self_by.get(frames[-1], 0) + value
        for frame in set(frames):
            total_by[frame] = total_by.get(frame, 0) + value
    ranked = sorted(total_by, key=lambda f: (-self_by.get(f, 0), -total_by[f], f.function))[:limit]
    return [
        {
            "name": f.function,
            "file": f.file,
            "line": f.line,
            "self": self_by.get(f, 0),
            "total": total_by[f],
            "sample_type": used,
        }
        for f in ranked
    ]

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
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple

# Re-exported: the server and the tests read code kinds from here.
from .codekind import LIBRARY as LIBRARY
from .codekind import STDLIB as STDLIB
from .codekind import USER as USER
from .codekind import code_kind as code_kind
from .model import CPU, WALL, Frame, Profile

ROOT_FRAME = Frame("all")
OTHER_FRAME = Frame("other")
#: Stands for the calls below :data:`MAX_DEPTH` (the agent's marker for a stack cut short).
TRUNCATED_FRAME = Frame("[truncated]")
#: Deepest node the nested-dict views hold: each level is two JSON levels (object, children),
#: and JSON encoders and browsers stop near 1000; deeper calls fold into one ``[truncated]`` node.
MAX_DEPTH = 400

#: A sample filter: ``(frames root first, labels) -> keep?``.
SampleFilter = Callable[[Tuple[Frame, ...], Mapping[str, str]], bool]
#: A frame predicate, for sandwich and focus: ``frame -> is it the one?``.
FrameMatch = Callable[[Frame], bool]
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
    return _build(profile, _stacks(profile, sample_type, keep))


def bottom_up(profile: Profile, sample_type: str, keep: Optional[SampleFilter] = None) -> Node:
    """The inverted (hotspots) tree: leaf functions under the root, their callers below them.

    A root child's total is the function's self value summed over every call path.
    """
    stacks = ((stack[::-1], value) for stack, value in _stacks(profile, sample_type, keep))
    return _build(profile, stacks)


def sandwich(
    profile: Profile, sample_type: str, match: FrameMatch, keep: Optional[SampleFilter] = None
) -> Tuple[Node, Node]:
    """``(callers, callees)`` of the frames ``match`` accepts, each rooted at the matched frame.

    Only the outermost matching frame of a stack counts, so recursion is not counted
    twice. ``callers`` is inverted (its children call the frame); ``callees`` is top-down.
    Both roots have the same total: every sample whose stack passes through the frame.
    """
    frames = profile.frames
    matched = {i for i, frame in enumerate(frames) if match(frame)}
    callers: List[Tuple[Tuple[int, ...], int]] = []
    callees: List[Tuple[Tuple[int, ...], int]] = []
    for stack, value in _stacks(profile, sample_type, keep):
        at = next((i for i, index in enumerate(stack) if index in matched), -1)
        if at == -1:
            continue
        callers.append((stack[at::-1], value))
        callees.append((stack[at:], value))
    return _single_root(_build(profile, callers), match), _single_root(_build(profile, callees), match)


def _single_root(tree: Node, match: FrameMatch) -> Node:
    """Fold the root's children (all matched frames) into one node named after the first."""
    if not tree.children:
        return Node(Frame(ROOT_FRAME.function))
    first = tree.sorted_children()[0]
    if len(tree.children) == 1:
        return first
    merged = Node(first.frame)
    for child in tree.children.values():
        _merge_into(merged, child)
    return merged


def _merge_into(target: Node, source: Node) -> None:
    pending = [(target, source)]
    while pending:
        into, node = pending.pop()
        into.total += node.total
        into.self_value += node.self_value
        for frame, child in node.children.items():
            pending.append((into.child(frame), child))


def frame_match(function: str, file: Optional[str] = None, line: Optional[int] = None) -> FrameMatch:
    """A predicate accepting frames named ``function`` (and in ``file`` at ``line`` when given)."""

    def match(frame: Frame) -> bool:
        return (
            frame.function == function and (file is None or frame.file == file) and (line is None or frame.line == line)
        )

    return match


def focus_filter(match: FrameMatch) -> SampleFilter:
    """Keep only samples whose stack passes through a frame ``match`` accepts."""
    return lambda frames, _labels: any(match(frame) for frame in frames)


def label_filter(wanted: Mapping[str, str]) -> SampleFilter:
    """Keep only samples that carry every ``key: value`` of ``wanted``."""
    items = list(wanted.items())
    return lambda _frames, labels: all(labels.get(key) == value for key, value in items)


def all_of(filters: Iterable[Optional[SampleFilter]]) -> Optional[SampleFilter]:
    """One filter keeping what every given filter keeps (None when there are none)."""
    active = [f for f in filters if f is not None]
    if not active:
        return None
    if len(active) == 1:
        return active[0]
    return lambda frames, labels: all(f(frames, labels) for f in active)


def _stacks(profile: Profile, sample_type: str, keep: Optional[SampleFilter]) -> Iterator[Tuple[Tuple[int, ...], int]]:
    """``(stack of frame indices, value)`` of every sample with a value that ``keep`` accepts."""
    column = profile.value_index(sample_type)
    frames = profile.frames
    for sample in profile.samples:
        value = sample.values[column]
        if not value:
            continue
        if keep is not None and not keep(tuple(frames[i] for i in sample.stack), sample.labels):
            continue
        yield sample.stack, value


def _build(profile: Profile, stacks: Iterable[Tuple[Sequence[int], int]]) -> Node:
    root = Node(ROOT_FRAME)
    # Build on frame indices first (cheap to hash), then translate once per node.
    by_id: Dict[int, Any] = {}
    root_self = 0
    for stack, value in stacks:
        if not stack:
            root_self += value
            continue
        level = by_id
        last = len(stack) - 1
        for position, index in enumerate(stack):
            entry = level.get(index)
            if entry is None:
                entry = level[index] = [0, 0, {}]
            entry[0] += value
            if position == last:
                entry[1] += value
            level = entry[2]
    root.self_value = root_self
    _attach(root, by_id, profile.frames)
    root.total = root.self_value + sum(child.total for child in root.children.values())
    return root


def _attach(root: Node, by_id: Dict[int, Any], frames: List[Frame]) -> None:
    pending: List[Tuple[Node, Dict[int, Any]]] = [(root, by_id)]
    while pending:
        parent, level = pending.pop()
        siblings = parent.children
        for index, (total, self_value, children) in level.items():
            frame = frames[index]
            node = siblings.get(frame)
            if node is None:
                node = siblings[frame] = Node(frame, self_value, total)
            else:  # two indices may hold equal frames in a hand-built profile: add, do not replace
                node.total += total
                node.self_value += self_value
            if children:
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


@dataclass(frozen=True)
class PathTree:
    """A call tree as flat lists over call-path ids, 0 being the root (the empty path).

    ``parents[i]`` is the parent path's id (-1 for the root); path ``i``'s children with a
    non-zero total are ``children[bounds[i]:bounds[i + 1]]``, ordered as
    :meth:`Node.sorted_children` orders them; ``counts[i]`` is the number of nodes with
    a non-zero total in ``i``'s subtree (``i`` included). Built by the server from summed
    per-bucket count arrays, so a range's tree needs no per-sample work.
    """

    frames: Sequence[Frame]
    parents: Sequence[int]
    self_values: Sequence[int]
    totals: Sequence[int]
    counts: Sequence[int]
    children: Sequence[int]
    bounds: Sequence[int]

    def children_of(self, path: int) -> Sequence[int]:
        """The ids of ``path``'s children, largest total first."""
        return self.children[self.bounds[path] : self.bounds[path + 1]]

    def child_count(self, path: int) -> int:
        """How many children ``path`` has."""
        return self.bounds[path + 1] - self.bounds[path]


def prune_paths(tree: PathTree, max_nodes: int) -> Node:
    """The same tree as ``prune(build_tree(...), max_nodes)`` of the samples ``tree`` sums.

    Only the kept nodes are ever created, so the cost follows ``max_nodes``, not the
    size of the full tree. Every node's children are in :meth:`Node.sorted_children`
    order, so ``to_dict(..., ordered=True)`` need not sort them again.
    """
    if max_nodes < 2:
        raise ValueError(f"max_nodes must be at least 2 (the root and one 'other' node), got {max_nodes}")
    totals, children_of, child_count = tree.totals, tree.children_of, tree.child_count
    copies = {0: Node(ROOT_FRAME, tree.self_values[0], totals[0])}
    kept_children: Dict[int, int] = {0: 0}
    needs_other = 1 if child_count(0) else 0
    kept = 1
    heap: List[Tuple[int, int, int, int]] = []
    order = 0
    for child in children_of(0):
        heap.append((-totals[child], order, child, 0))
        order += 1
    heapq.heapify(heap)
    while heap:
        _, _, path, parent = heap[0]
        complete = kept_children[parent] + 1 == child_count(parent)
        has_children = child_count(path) > 0
        if kept + 1 + needs_other - complete + has_children > max_nodes:
            break
        heapq.heappop(heap)
        node = Node(tree.frames[path], tree.self_values[path], totals[path])
        copies[parent].children[node.frame] = node
        copies[path] = node
        kept_children[parent] += 1
        kept_children[path] = 0
        kept += 1
        needs_other += has_children - complete
        for child in children_of(path):
            heapq.heappush(heap, (-totals[child], order, child, path))
            order += 1
    _add_path_other_nodes(tree, copies, kept_children)
    return copies[0]


def _add_path_other_nodes(tree: PathTree, copies: Dict[int, Node], kept_children: Dict[int, int]) -> None:
    """Under each kept node that lost children, one ``other`` node (as :func:`prune` makes)."""
    kept_counts: Dict[int, int] = {}
    for path in copies:
        if path:
            parent_path = tree.parents[path]
            kept_counts[parent_path] = kept_counts.get(parent_path, 0) + tree.counts[path]
    for path, node in copies.items():
        if kept_children[path] == tree.child_count(path):
            continue
        lost = node.total - node.self_value - sum(child.total for child in node.children.values())
        pruned = tree.counts[path] - 1 - kept_counts.get(path, 0)
        frame = OTHER_FRAME if OTHER_FRAME not in node.children else Frame("other", "<pruned>")
        node.children[frame] = Node(frame, lost, lost, pruned=pruned)
        node.children = {child.frame: child for child in node.sorted_children()}


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


def to_dict(tree: Node, ordered: bool = False) -> Dict[str, Any]:
    """Nested JSON-ready dicts: name, file, line, self, total, children (by total descending).

    At most :data:`MAX_DEPTH` levels: what is deeper folds into one ``[truncated]`` node.

    ``ordered``: the children are already in :meth:`Node.sorted_children` order (as
    :func:`prune_paths` leaves them), so they are not sorted again.
    """
    result = _node_dict(tree)
    pending = [(tree, result, 0)]
    while pending:
        node, out, depth = pending.pop()
        if depth == MAX_DEPTH - 1 and node.children:
            lost = node.total - node.self_value
            out["children"].append(_node_dict(Node(TRUNCATED_FRAME, lost, lost)))
            continue
        for child in node.children.values() if ordered else node.sorted_children():
            child_out = _node_dict(child)
            out["children"].append(child_out)
            pending.append((child, child_out, depth + 1))
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


def hotspots(
    profile: Profile, sample_type: str = CPU, limit: int = 20, keep: Optional[SampleFilter] = None
) -> List[Dict[str, Any]]:
    """Bottom-up view: frames by self value, with their total (counted once per stack).

    Samples failing ``keep`` are left out.
    """
    used = choose_sample_type(profile, sample_type)
    if not profile.has_type(used):
        return []
    frames = profile.frames
    # Equal frames under two indices (hand-built profiles) count as one function.
    first: Dict[Frame, int] = {}
    canonical = [first.setdefault(frame, i) for i, frame in enumerate(frames)]
    self_ids: Dict[int, int] = {}
    total_ids: Dict[int, int] = {}
    for stack, value in _stacks(profile, used, keep):
        if stack:
            leaf = canonical[stack[-1]]
            self_ids[leaf] = self_ids.get(leaf, 0) + value
        for index in {canonical[i] for i in stack}:
            total_ids[index] = total_ids.get(index, 0) + value
    self_by = {frames[i]: value for i, value in self_ids.items()}
    total_by = {frames[i]: value for i, value in total_ids.items()}
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


# -- diff ------------------------------------------------------------------------


def diff(base: Node, target: Node, max_nodes: int = 5000) -> Dict[str, Any]:
    """The diff flame graph of two trees as nested dicts, pruned to ``max_nodes``.

    Every node carries the target's ``self`` and ``total`` and the base's ``base_self``
    and ``base_total``; a frame missing from one side has zeros there. Nodes are ranked
    for pruning by their share of both trees together, so a frame that vanished or
    appeared is as visible as one that grew; pruned nodes fold into ``other`` nodes whose
    values are the sums of what they replace, on both sides.
    """
    base_scale, target_scale = max(target.total, 1), max(base.total, 1)
    weighted, values = _union(base, target, base_scale, target_scale)
    pruned = prune(weighted, max_nodes)
    result = _diff_dict(pruned, weighted, values)
    pending = [(pruned, weighted, result, 0)]
    while pending:
        kept, original, out, depth = pending.pop()
        if depth == MAX_DEPTH - 1 and kept.children:
            out["children"].append(_truncated_diff_dict(out))
            continue
        for child in kept.sorted_children():
            if child.pruned:
                child_out = _other_dict(child, original, kept, values)
            else:
                source = original.children[child.frame]
                child_out = _diff_dict(child, source, values)
                pending.append((child, source, child_out, depth + 1))
            out["children"].append(child_out)
    return result


def _truncated_diff_dict(parent: Dict[str, Any]) -> Dict[str, Any]:
    """The one node standing for everything below ``parent`` at :data:`MAX_DEPTH`."""
    lost, lost_base = parent["total"] - parent["self"], parent["base_total"] - parent["base_self"]
    return {
        "name": TRUNCATED_FRAME.function,
        "file": "",
        "line": 0,
        "self": lost,
        "total": lost,
        "base_self": lost_base,
        "base_total": lost_base,
        "children": [],
    }


_Values = Dict[int, Tuple[int, int, int, int]]  # id(node) -> (base self, base total, self, total)


def _union(base: Node, target: Node, base_scale: int, target_scale: int) -> Tuple[Node, _Values]:
    """One tree over both, whose totals weigh each side by its share (exact integers)."""
    values: _Values = {}
    root = Node(ROOT_FRAME)
    empty = Node(ROOT_FRAME)
    pending = [(root, base, target)]
    while pending:
        node, left, right = pending.pop()
        values[id(node)] = (left.self_value, left.total, right.self_value, right.total)
        node.self_value = left.self_value * base_scale + right.self_value * target_scale
        node.total = left.total * base_scale + right.total * target_scale
        for frame in {**left.children, **right.children}:
            pending.append((node.child(frame), left.children.get(frame, empty), right.children.get(frame, empty)))
    return root, values


def _diff_dict(node: Node, original: Node, values: _Values) -> Dict[str, Any]:
    base_self, base_total, self_value, total = values[id(original)]
    return {
        "name": node.frame.function,
        "file": node.frame.file,
        "line": node.frame.line,
        "self": self_value,
        "total": total,
        "base_self": base_self,
        "base_total": base_total,
        "children": [],
    }


def _other_dict(other: Node, original: Node, kept: Node, values: _Values) -> Dict[str, Any]:
    """The ``other`` node under ``kept``: what its pruned children held, on both sides."""
    base_self, base_total, self_value, total = values[id(original)]
    for frame, sibling in kept.children.items():
        if not sibling.pruned and frame in original.children:
            child = values[id(original.children[frame])]
            base_total -= child[1]
            total -= child[3]
    lost_base, lost = base_total - base_self, total - self_value
    return {
        "name": other.frame.function,
        "file": other.frame.file,
        "line": other.frame.line,
        "self": lost,
        "total": lost,
        "base_self": lost_base,
        "base_total": lost_base,
        "pruned_nodes": other.pruned,
        "children": [],
    }


# -- "color my code": whose code each node is, decided in codekind ---------------


def annotate_kinds(tree: Dict[str, Any]) -> Dict[str, Any]:
    """Add ``kind`` (:func:`code_kind` of ``file``) to every node of a nested-dict tree, in place."""
    pending = [tree]
    while pending:
        node = pending.pop()
        node["kind"] = code_kind(node.get("file") or "")
        pending.extend(node.get("children", ()))
    return tree

"""The JSON views the UI draws, computed from one merged profile (pure: no Flask, no storage).

Every tree is pruned to a node budget with explicit ``other`` nodes, and every node says
whose code it is (``kind``: user, library or stdlib; see :func:`code_kind`).
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

from greenflame.analyzer.model import Profile
from greenflame.analyzer.tree import (
    ROOT_FRAME,
    FrameMatch,
    Node,
    SampleFilter,
    annotate_kinds,
    bottom_up,
    build_tree,
    choose_sample_type,
    code_kind,
    diff,
    hotspots,
    prune,
    prune_paths,
    sandwich,
    to_dict,
)

from .callpaths import PathsProfile

TOP_DOWN = "top-down"
BOTTOM_UP = "bottom-up"
MAX_LABEL_KEYS = 50
MAX_LABEL_VALUES = 50
#: The functions each side of a comparison contributes at most, before ranking by change.
MAX_DIFF_FUNCTIONS = 20_000


def _unit(profile: Profile, sample_type: str) -> str:
    if not profile.has_type(sample_type):
        return "samples"
    return profile.sample_types[profile.value_index(sample_type)].unit


def _tree_json(tree: Node, max_nodes: int, sample_type: str, unit: str) -> Dict[str, Any]:
    result = annotate_kinds(to_dict(prune(tree, max_nodes)))
    result["sample_type"] = sample_type
    result["unit"] = unit
    return result


def flamegraph_view(
    profile: Profile, sample_type: str, max_nodes: int, view: str = TOP_DOWN, keep: Optional[SampleFilter] = None
) -> Dict[str, Any]:
    """The top-down or bottom-up tree, rooted at ``all``; the root names the type and unit used.

    When ``sample_type`` has no samples the wall type is used (as ``flamegraph`` does).
    """
    used = choose_sample_type(profile, sample_type)
    if not profile.has_type(used):
        return _tree_json(Node(ROOT_FRAME), max_nodes, used, "samples")
    unit = _unit(profile, used)
    if view == TOP_DOWN and keep is None and isinstance(profile, PathsProfile):
        # Summed call-path counts: only the kept nodes are built (same tree as the general path).
        tree = prune_paths(profile.path_tree(used), max_nodes)
        result = annotate_kinds(to_dict(tree, ordered=True))
        result["sample_type"] = used
        result["unit"] = unit
        return result
    builder = bottom_up if view == BOTTOM_UP else build_tree
    return _tree_json(builder(profile, used, keep), max_nodes, used, unit)


def sandwich_view(
    profile: Profile, sample_type: str, match: FrameMatch, max_nodes: int, keep: Optional[SampleFilter] = None
) -> Dict[str, Any]:
    """``callers`` (inverted: children call the function) and ``callees`` of one function."""
    used = choose_sample_type(profile, sample_type)
    unit = _unit(profile, used)
    if not profile.has_type(used):
        empty = Node(ROOT_FRAME)
        return {"callers": _tree_json(empty, 2, used, unit), "callees": _tree_json(empty, 2, used, unit)}
    callers, callees = sandwich(profile, used, match, keep)
    return {
        "callers": _tree_json(callers, max_nodes, used, unit),
        "callees": _tree_json(callees, max_nodes, used, unit),
    }


def functions_view(
    profile: Profile, sample_type: str, limit: int, keep: Optional[SampleFilter] = None
) -> List[Dict[str, Any]]:
    """Functions by self value, with total and kind, at most ``limit``."""
    rows = hotspots(profile, sample_type, limit, keep)
    for row in rows:
        row["kind"] = code_kind(row["file"])
    return rows


def diff_view(
    base: Profile, target: Profile, sample_type: str, max_nodes: int, keep: Optional[SampleFilter] = None
) -> Dict[str, Any]:
    """The diff tree of ``base`` against ``target`` (see :func:`diff`), rooted at ``all``."""
    used = choose_sample_type(target, sample_type) if target.samples else choose_sample_type(base, sample_type)
    trees = [
        build_tree(profile, used, keep) if profile.has_type(used) else Node(ROOT_FRAME) for profile in (base, target)
    ]
    result = annotate_kinds(diff(trees[0], trees[1], max_nodes))
    result["sample_type"] = used
    result["unit"] = _unit(target, used) if target.has_type(used) else _unit(base, used)
    return result


def labels_view(profile: Profile) -> Dict[str, List[Dict[str, Any]]]:
    """Label keys (at most 50) with their values by sample count (at most 50 each)."""
    counts: Dict[str, Dict[str, int]] = {}
    column = 0
    for sample in profile.samples:
        weight = sample.values[column] if sample.values else 0
        for key, value in sample.labels.items():
            values = counts.setdefault(key, {})
            values[value] = values.get(value, 0) + weight
    result: Dict[str, List[Dict[str, Any]]] = {}
    for key in sorted(counts)[:MAX_LABEL_KEYS]:
        ranked = sorted(counts[key].items(), key=lambda item: (-item[1], item[0]))[:MAX_LABEL_VALUES]
        result[key] = [{"value": value, "samples": samples} for value, samples in ranked]
    return result


def functions_diff_view(
    base: Profile, target: Profile, sample_type: str, limit: int, keep: Optional[SampleFilter] = None
) -> Dict[str, Any]:
    """Each function's self and total share in ``base`` and ``target``, by the largest change first.

    A share is of its own side's total, so sides of different sizes compare; ``change`` is the
    target's total share minus the base's (the diff flame graph's colour). ``*_total`` name each
    side's total value, so the table can say that a side has no samples.
    """
    used = choose_sample_type(target, sample_type) if target.samples else choose_sample_type(base, sample_type)
    sides = [hotspots(profile, used, MAX_DIFF_FUNCTIONS, keep) for profile in (base, target)]
    totals = [sum(row["self"] for row in rows) for rows in sides]
    rows: Dict[Any, Dict[str, Any]] = {}
    for side, (found, total) in enumerate(zip(sides, totals)):
        prefix = ("base_", "")[side]
        for row in found:
            key = (row["name"], row["file"], row["line"])
            entry = rows.setdefault(key, _empty_diff_row(row))
            entry[prefix + "self_share"] = row["self"] / total if total else 0.0
            entry[prefix + "total_share"] = row["total"] / total if total else 0.0
    for entry in rows.values():
        entry["change"] = entry["total_share"] - entry["base_total_share"]
    ranked = sorted(rows.values(), key=lambda e: (-abs(e["change"]), -e["total_share"], e["name"]))[:limit]
    return {"sample_type": used, "base_total": totals[0], "total": totals[1], "functions": ranked}


def _empty_diff_row(row: Dict[str, Any]) -> Dict[str, Any]:
    return {
        "name": row["name"],
        "file": row["file"],
        "line": row["line"],
        "kind": code_kind(row["file"]),
        "base_self_share": 0.0,
        "base_total_share": 0.0,
        "self_share": 0.0,
        "total_share": 0.0,
    }

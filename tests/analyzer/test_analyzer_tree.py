"""Call trees: totals and self values, merging by frame, pruning with an explicit "other" node."""

from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from support.builders import lambda_profile, simple_profile

from greenflame.analyzer.model import Frame, Profile, SampleType
from greenflame.analyzer.tree import build_tree, choose_sample_type, flamegraph, hotspots, prune, to_dict


def _check_sums(node: Dict[str, Any]) -> None:
    assert node["total"] == node["self"] + sum(child["total"] for child in node["children"])
    totals = [child["total"] for child in node["children"]]
    assert totals == sorted(totals, reverse=True)
    for child in node["children"]:
        _check_sums(child)


def _count(node: Dict[str, Any]) -> int:
    return 1 + sum(_count(child) for child in node["children"])


def _names(node: Dict[str, Any]) -> List[str]:
    return [child["name"] for child in node["children"]]


def test_totals_and_self_merge_by_frame() -> None:
    profile = simple_profile([["a", "b"], ["a", "b", "c"], ["a", "d"], ["a"]], [5, 3, 2, 1])
    graph = flamegraph(profile)
    assert graph["name"] == "all" and graph["total"] == 11 and graph["self"] == 0
    (a,) = graph["children"]
    assert (a["name"], a["total"], a["self"], a["file"], a["line"]) == ("a", 11, 1, "a.py", 1)
    assert _names(a) == ["b", "d"]
    b = a["children"][0]
    assert (b["total"], b["self"]) == (8, 5)
    assert b["children"][0]["total"] == 3
    _check_sums(graph)


def test_same_function_under_different_parents_stays_apart() -> None:
    profile = simple_profile([["a", "x"], ["b", "x"]], [2, 3])
    graph = flamegraph(profile)
    assert _names(graph) == ["b", "a"]
    assert [child["children"][0]["total"] for child in graph["children"]] == [3, 2]


def test_cpu_falls_back_to_wall_and_says_so() -> None:
    profile = Profile()
    profile.add([Frame("sleep")], [4, 0])
    assert flamegraph(profile, "cpu")["sample_type"] == "wall"
    assert flamegraph(profile, "cpu")["total"] == 4
    profile.add([Frame("spin")], [1, 1])
    graph = flamegraph(profile, "cpu")
    assert graph["sample_type"] == "cpu" and graph["total"] == 1


def test_empty_profile_gives_an_empty_root() -> None:
    graph = flamegraph(Profile())
    assert graph["total"] == 0 and graph["children"] == [] and graph["sample_type"] == "cpu"
    assert flamegraph(Profile(sample_types=[SampleType("samples")]))["sample_type"] == "samples"


def test_pruning_keeps_largest_and_accounts_for_the_rest() -> None:
    stacks = [["root", f"f{i}"] for i in range(50)]
    profile = simple_profile(stacks, list(range(1, 51)))
    full = flamegraph(profile, max_nodes=5000)
    graph = flamegraph(profile, max_nodes=10)
    assert _count(graph) <= 10
    assert graph["total"] == full["total"] == sum(range(1, 51))
    _check_sums(graph)
    (root,) = graph["children"]
    other = next(child for child in root["children"] if child["name"] == "other")
    kept = [child for child in root["children"] if child["name"] != "other"]
    assert [child["name"] for child in kept] == [f"f{i}" for i in range(49, 49 - len(kept), -1)]
    assert other["total"] == other["self"] == sum(range(1, 51 - len(kept)))
    assert other["pruned_nodes"] == 50 - len(kept)


def test_pruning_deep_trees_never_loses_samples() -> None:
    profile = lambda_profile(invocations=20)
    for limit in (2, 3, 5, 8, 13):
        graph = flamegraph(profile, "wall", max_nodes=limit)
        assert _count(graph) <= limit
        assert graph["total"] == profile.total("wall")
        _check_sums(graph)


def test_prune_is_pure_and_validates() -> None:
    tree = build_tree(simple_profile([["a", "b"], ["a", "c"]]), "cpu")
    before = to_dict(tree)
    prune(tree, 2)
    assert to_dict(tree) == before
    with pytest.raises(ValueError):
        prune(tree, 1)


def test_a_real_frame_called_other_is_not_confused_with_pruning() -> None:
    profile = simple_profile([["r", "x1"], ["r", "x2"], ["r", "x3"]], [5, 4, 3])
    profile.add([Frame("r", "r.py", 1), Frame("other")], [9, 9])
    graph = flamegraph(profile, max_nodes=4)
    root = graph["children"][0]
    assert sum(child["total"] for child in root["children"]) == 21
    assert len({(c["name"], c["file"]) for c in root["children"]}) == len(root["children"])


def test_deep_stacks_do_not_recurse() -> None:
    profile = Profile()
    profile.add([Frame(f"f{i}") for i in range(3000)], [1, 1])
    tree = build_tree(profile, "cpu")
    assert tree.count() == 3001
    assert prune(tree, 100).count() <= 100


def test_choose_sample_type_order() -> None:
    profile = Profile(sample_types=[SampleType("samples", "count")])
    assert choose_sample_type(profile, "cpu") == "samples"
    profile.add([Frame("a")], [2])
    assert choose_sample_type(profile, "cpu") == "samples"


def test_hotspots_rank_by_self_and_count_recursion_once() -> None:
    profile = simple_profile([["a", "b", "a"], ["a", "c"]], [3, 1])
    spots = {spot["name"]: spot for spot in hotspots(profile)}
    assert spots["a"]["self"] == 3 and spots["a"]["total"] == 4
    assert spots["c"]["self"] == 1


def test_flamegraph_is_json() -> None:
    json.dumps(flamegraph(lambda_profile(invocations=3)))

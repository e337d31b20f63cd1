"""Tree views: bottom-up, sandwich, focus and label filters, diff with pruning, code kinds."""

from __future__ import annotations

from typing import Any, Dict, List

from support.builders import simple_profile

from greenflame.analyzer.model import Frame, Profile
from greenflame.analyzer.tree import (
    LIBRARY,
    STDLIB,
    USER,
    all_of,
    annotate_kinds,
    bottom_up,
    build_tree,
    code_kind,
    diff,
    focus_filter,
    frame_match,
    label_filter,
    sandwich,
    to_dict,
)


def _names(node: Dict[str, Any]) -> List[str]:
    return [child["name"] for child in node["children"]]


def _check_diff_sums(node: Dict[str, Any]) -> None:
    for own, inclusive in (("self", "total"), ("base_self", "base_total")):
        assert node[inclusive] == node[own] + sum(child[inclusive] for child in node["children"])
    for child in node["children"]:
        _check_diff_sums(child)


def test_bottom_up_roots_are_leaves_with_their_self_time() -> None:
    profile = simple_profile([["main", "a", "hot"], ["main", "b", "hot"], ["main", "a"]], [3, 2, 1])
    tree = to_dict(bottom_up(profile, "cpu"))
    assert tree["total"] == 6 and _names(tree) == ["hot", "a"]
    hot = tree["children"][0]
    assert hot["total"] == 5 and _names(hot) == ["a", "b"]
    assert [c["total"] for c in hot["children"]] == [3, 2]
    assert _names(hot["children"][0]) == ["main"]


def test_sandwich_counts_recursion_once_and_splits_callers_from_callees() -> None:
    stacks = [["main", "f", "g"], ["main", "f", "f", "g"], ["other", "f"], ["main", "g"]]
    profile = simple_profile(stacks, [4, 2, 1, 8])
    callers, callees = sandwich(profile, "cpu", frame_match("f"))
    assert callers.frame.function == "f" and callers.total == callees.total == 7
    assert {child.frame.function: child.total for child in callers.children.values()} == {"main": 6, "other": 1}
    callee_totals = {child.frame.function: child.total for child in callees.children.values()}
    assert callee_totals == {"g": 4, "f": 2} and callees.self_value == 1


def test_sandwich_of_an_absent_frame_is_empty() -> None:
    callers, callees = sandwich(simple_profile([["a"]], [1]), "cpu", frame_match("missing"))
    assert callers.total == callees.total == 0 and not callers.children


def test_focus_and_label_filters_compose() -> None:
    profile = Profile()
    profile.add([Frame("main"), Frame("parse")], [3, 3], {"endpoint": "/a"})
    profile.add([Frame("main"), Frame("parse")], [5, 5], {"endpoint": "/b"})
    profile.add([Frame("main"), Frame("sleep")], [7, 7], {"endpoint": "/a"})
    focus = focus_filter(frame_match("parse"))
    assert build_tree(profile, "cpu", focus).total == 8
    assert build_tree(profile, "cpu", label_filter({"endpoint": "/a"})).total == 10
    assert build_tree(profile, "cpu", all_of([focus, label_filter({"endpoint": "/a"}), None])).total == 3
    assert all_of([None]) is None


def test_diff_keeps_both_sides_and_vanished_frames() -> None:
    base = build_tree(simple_profile([["a", "b"], ["a", "gone"]], [6, 4]), "cpu")
    target = build_tree(simple_profile([["a", "b"], ["a", "new"]], [2, 18]), "cpu")
    tree = diff(base, target)
    (a,) = tree["children"]
    by_name = {child["name"]: child for child in a["children"]}
    assert (by_name["gone"]["base_total"], by_name["gone"]["total"]) == (4, 0)
    assert (by_name["new"]["base_total"], by_name["new"]["total"]) == (0, 18)
    assert (by_name["b"]["base_total"], by_name["b"]["total"]) == (6, 2)
    assert (tree["base_total"], tree["total"]) == (10, 20)
    _check_diff_sums(tree)


def test_diff_pruning_makes_an_other_node_with_both_sides() -> None:
    base = build_tree(simple_profile([["a", "b"], ["a", "c"], ["a", "d", "e"]], [5, 3, 2]), "cpu")
    target = build_tree(simple_profile([["a", "b"], ["a", "c"], ["a", "x"]], [1, 3, 6]), "cpu")
    tree = diff(base, target, max_nodes=4)
    others = [child for child in tree["children"][0]["children"] if child["name"] == "other"]
    assert len(others) == 1 and others[0]["pruned_nodes"] >= 1
    _check_diff_sums(tree)
    assert tree["total"] == 10 and tree["base_total"] == 10


def test_diff_of_an_empty_base() -> None:
    tree = diff(build_tree(Profile(), "cpu"), build_tree(simple_profile([["a"]], [3]), "cpu"))
    assert tree["base_total"] == 0 and tree["children"][0]["total"] == 3


def test_code_kind_from_paths() -> None:
    assert code_kind("/srv/app/handler.py") == USER
    assert code_kind("app/handler.py") == USER
    assert code_kind("/usr/lib/python3.11/json/decoder.py") == STDLIB
    assert code_kind("/var/lang/lib/python3.12/http/client.py") == STDLIB
    assert code_kind("C:\\Python311\\Lib\\site-packages\\requests\\api.py") == LIBRARY
    assert code_kind("/usr/lib/python3/dist-packages/yaml/__init__.py") == LIBRARY
    assert code_kind("/home/u/proj/.venv/lib/python3.11/site-packages/flask/app.py") == LIBRARY
    assert code_kind("/var/runtime/bootstrap.py") == LIBRARY
    assert code_kind("/opt/python/boto3/session.py") == LIBRARY
    assert code_kind("") == STDLIB and code_kind("<frozen importlib._bootstrap>") == STDLIB


def test_annotate_kinds_walks_every_node() -> None:
    tree = to_dict(build_tree(simple_profile([["a", "b"]], [1]), "cpu"))
    annotate_kinds(tree)
    assert tree["kind"] == STDLIB and tree["children"][0]["kind"] == USER
    assert tree["children"][0]["children"][0]["kind"] == USER

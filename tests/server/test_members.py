"""The profile ids of a bucket's sums (server/members.py): an immutable set that grows by sharing."""

from __future__ import annotations

import pytest

from greenflame.server.members import Members


def test_a_grown_set_holds_the_new_id_and_the_one_it_came_from_does_not() -> None:
    first = Members(["a", "b"])
    second = first.plus("c")
    third = second.plus("d")
    assert (sorted(first), sorted(second), sorted(third)) == (["a", "b"], ["a", "b", "c"], ["a", "b", "c", "d"])
    assert "c" not in first and "c" in second and "d" not in second
    assert (len(first), len(second), len(third)) == (2, 3, 4)


def test_growing_an_older_set_does_not_change_the_newer_ones() -> None:
    base = Members(["a"])
    newer = base.plus("b")
    branch = base.plus("c")  # base is no longer its log's newest set
    assert sorted(newer) == ["a", "b"] and sorted(branch) == ["a", "c"]
    assert sorted(newer.plus("d")) == ["a", "b", "d"] and sorted(branch.plus("e")) == ["a", "c", "e"]
    assert "c" not in newer and "b" not in branch


def test_an_id_already_held_gives_the_same_set() -> None:
    held = Members(["a", "b"])
    assert held.plus("a") is held
    assert Members.of(held) is held
    assert Members.of(frozenset({"x"})) == {"x"}


def test_it_compares_with_plain_sets_both_ways() -> None:
    grown = Members(["a"]).plus("b")
    assert grown == frozenset({"a", "b"}) and frozenset({"a", "b"}) == grown
    assert grown != frozenset({"a"}) and grown != {"a", "b", "c"}
    assert frozenset({"a", "b", "c"}) > grown and not frozenset({"a", "b"}) > grown
    assert grown < {"a", "b", "c"}
    remainder = grown - {"a": 1}.keys()
    assert remainder == frozenset({"b"}) and isinstance(remainder, frozenset)
    assert Members() == frozenset() and not Members()


def test_it_cannot_be_hashed_as_a_set_cannot() -> None:
    with pytest.raises(TypeError):
        hash(Members(["a"]))

"""Call-path rollups: a range's tree from summed bucket arrays equals the tree of the merged raw
profiles; stored buckets round-trip into another index; the per-bucket cap; incremental ingest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from greenflame.analyzer.model import CPU, WALL, Frame, Profile, SampleType, merge
from greenflame.analyzer.tree import build_tree, prune, prune_paths
from greenflame.server import callpaths
from greenflame.server.app import create_app
from greenflame.server.callpaths import (
    CAPPED_FRAME,
    PathIndex,
    StoredFormatError,
    cap,
    decode,
    encode,
    fold_profile,
    merge_counts,
    path_tree,
)
from greenflame.server.rollups import HOUR_NS, get_rollups
from greenflame.server.storage import get_storage

FRAMES = [Frame(name, file, line) for name in ("a", "b", "other", "c") for file, line in (("x.py", 1), ("", 0))]
Stack = Tuple[int, ...]
stacks = st.lists(st.integers(0, len(FRAMES) - 1), max_size=6).map(tuple)
samples = st.lists(st.tuples(stacks, st.integers(0, 50), st.integers(0, 50)), max_size=25)


def build(rows: Sequence[Tuple[Stack, int, int]], start_ns: int = 0) -> Profile:
    """A profile of ``(stack of FRAMES indices, wall, cpu)`` rows, each with a label."""
    profile = Profile(group="g", start_time_unix_ns=start_ns, duration_ns=300 * 10**9)
    for n, (stack, wall, cpu) in enumerate(rows):
        profile.add([FRAMES[i] for i in stack], [wall, cpu], {"n": str(n % 3)})
    return profile


def rolled_up(index: PathIndex, profiles: List[Profile]) -> callpaths.PathCounts:
    return merge_counts(index, [fold_profile(index, profile) for profile in profiles])


@settings(max_examples=150, deadline=None)
@given(st.lists(samples, min_size=1, max_size=5), st.integers(2, 40), st.sampled_from([CPU, WALL]))
def test_rolled_up_tree_equals_tree_of_merged_raw_profiles(
    parts: List[List[Tuple[Stack, int, int]]], max_nodes: int, sample_type: str
) -> None:
    profiles = [build(rows) for rows in parts]
    expected = build_tree(merge(profiles, "g"), sample_type)
    index = PathIndex()
    tree = path_tree(index, rolled_up(index, profiles), sample_type)
    assert prune_paths(tree, 10**6) == expected
    assert prune_paths(tree, max_nodes) == prune(expected, max_nodes)


@settings(max_examples=60, deadline=None)
@given(st.lists(samples, min_size=1, max_size=4), samples)
def test_stored_buckets_read_back_into_another_index(parts: List[List[Tuple[Stack, int, int]]], more: list) -> None:
    writer = PathIndex()
    counts = rolled_up(writer, [build(rows) for rows in parts])
    counts.capped = 3
    reader = PathIndex()
    fold_profile(reader, build(more))  # the reader already knows some paths, under other ids
    back = decode(reader, encode(writer, counts))
    assert (back.types, back.start_ns, back.end_ns, back.capped) == (counts.types, counts.start_ns, counts.end_ns, 3)
    for sample_type in (CPU, WALL):
        expected = prune_paths(path_tree(writer, counts, sample_type), 10**6)
        assert prune_paths(path_tree(reader, back, sample_type), 10**6) == expected


def test_damaged_stored_bucket_is_a_clear_error() -> None:
    with pytest.raises(StoredFormatError):
        decode(PathIndex(), b"not a bucket")


def test_cap_keeps_the_largest_stacks_and_counts_the_rest_under_other() -> None:
    rows = [((i % 8, (i + 1) % 8), 100 - i, 0) for i in range(8)] + [((0, 1, 2, 3), 1, 0), ((4, 5, 6), 2, 0)]
    profile = build(rows)
    index = PathIndex()
    full = fold_profile(index, profile)
    assert len(full.ids) == 10 and full.capped == 0
    capped = cap(index, full, 5)
    assert len(capped.ids) == 5 and capped.capped == 6
    tree = prune_paths(path_tree(index, capped, WALL), 10**6)
    assert tree.total == build_tree(profile, WALL).total
    other = tree.children[CAPPED_FRAME]
    assert other.total == other.self_value == sum(100 - i for i in range(4, 8)) + 1 + 2
    assert {child.frame for child in tree.children.values()} >= {FRAMES[0], FRAMES[1], FRAMES[2], FRAMES[3]}
    again = cap(index, merge_counts(index, [capped, fold_profile(index, profile, max_paths=5)]), 5)
    assert len(again.ids) == 5 and again.capped == 12
    assert prune_paths(path_tree(index, again, WALL), 10**6).total == 2 * tree.total


def _stored_app(tmp_path: Path) -> object:
    app = create_app({"data_dir": str(tmp_path), "admin_token": "t"})
    with app.app_context():
        get_storage().create_group("svc")
    return app

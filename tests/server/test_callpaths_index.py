"""A call-path index's frames and paths of whole stacks (server/callpaths.py ``PathIndex.frame_ids`` and ``leaves``)."""

from __future__ import annotations

import random
from typing import List, Sequence

import numpy as np

from greenflame.analyzer.formats.wire_summary import FrameColumns
from greenflame.analyzer.model import Frame
from greenflame.server.callpaths import ROOT, PathIndex


def leaves(index: PathIndex, frame_ids: List[int], stacks: Sequence[Sequence[int]]) -> List[int]:
    """``index.leaves`` of ``stacks`` given as its columns (depths, the stacks end to end)."""
    depths = np.array([len(stack) for stack in stacks], dtype=np.int64)
    flat = np.array([n for stack in stacks for n in stack], dtype=np.uint32)
    return index.leaves(frame_ids, depths, flat)


def test_stacks_in_another_tables_numbers_get_the_paths_their_frames_walk() -> None:
    chooser = random.Random(14)
    index = PathIndex()
    table = [Frame(f"f{n}", "app.py", n) for n in range(40)]
    with index.lock:
        frame_ids = [index.frame_id(frame) for frame in reversed(table)][::-1]  # ids differ from positions
        for _ in range(3):  # new stacks, then the same ones again (found by their bytes), then a mix
            stacks: List[List[int]] = [
                [chooser.randrange(len(table)) for _ in range(chooser.randint(0, 12))] for _ in range(60)
            ]
            stacks += stacks[:10]
            expected = [index.leaf(tuple(frame_ids[n] for n in stack)) for stack in stacks]
            assert leaves(index, frame_ids, stacks) == expected
            assert leaves(index, frame_ids, stacks) == expected
        assert leaves(index, frame_ids, []) == []
        assert leaves(index, frame_ids, [[]]) == [ROOT]


def test_a_stack_first_met_through_leaves_has_its_prefixes_as_paths() -> None:
    index = PathIndex()
    with index.lock:
        ids = [index.frame_id(Frame(name)) for name in ("main", "handle", "query")]
        [path] = leaves(index, ids, [[0, 1, 2]])
        assert index.stack(path) == tuple(ids)
        assert index.leaf((ids[0], ids[1])) == index.parents[path]


def columns(frames: Sequence[Frame]) -> FrameColumns:
    return FrameColumns(
        [f.function for f in frames], [f.file for f in frames], np.array([f.line for f in frames], dtype=np.int64)
    )


def test_a_documents_frames_get_the_ids_their_frames_have() -> None:
    chooser = random.Random(7)
    names = ["handle", "handle", "ünïcode", "", "q\udc80uery", "a" * 300]
    pool = [
        Frame(chooser.choice(names), chooser.choice(["app.py", "lib/x.py", ""]), chooser.randrange(5))
        for _ in range(400)
    ]
    index = PathIndex()
    with index.lock:
        first = [index.frame_id(frame) for frame in pool[:50]]  # some met one by one first
        for _ in range(3):
            table = chooser.sample(pool, 120) + pool[:3]  # a table may name a frame twice
            ids = index.frame_ids(columns(table))
            assert ids == [index.frame_id(frame) for frame in table]
            assert [index.frames[n] for n in ids] == table
        assert [index.frame_id(frame) for frame in pool[:50]] == first
        distinct = set(pool)
        seen = index.frame_ids(columns(list(distinct)))
        assert len(set(seen)) == len(distinct) == len(index.frames)
        assert index.frame_ids(columns([])) == []


def test_frames_differing_in_one_field_are_different_frames() -> None:
    index = PathIndex()
    table = [
        Frame("f", "a.py", 1),
        Frame("f", "a.py", 2),
        Frame("f", "b.py", 1),
        Frame("g", "a.py", 1),
        Frame("a.py", "f", 1),
    ]
    with index.lock:
        assert index.frame_ids(columns(table)) == [0, 1, 2, 3, 4]
        assert index.frame_ids(columns(table[::-1])) == [4, 3, 2, 1, 0]


def test_stacks_of_the_same_frames_in_another_order_or_depth_are_different_paths() -> None:
    index = PathIndex()
    with index.lock:
        a, b = index.frame_id(Frame("a")), index.frame_id(Frame("b"))
        stacks = [[0, 1], [1, 0], [0], [0, 0], [0, 1, 0], [], [1, 1, 0, 0], [1, 0, 1, 0]]
        paths = leaves(index, [a, b], stacks)
        assert len(set(paths)) == len(stacks)
        assert paths == [index.leaf(tuple([a, b][n] for n in stack)) for stack in stacks]
        assert leaves(index, [b, a], stacks) == [index.leaf(tuple([b, a][n] for n in stack)) for stack in stacks]

"""A call-path index's paths of whole stacks (server/callpaths.py ``PathIndex.leaves``)."""

from __future__ import annotations

import random
from typing import List, Sequence

import numpy as np

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

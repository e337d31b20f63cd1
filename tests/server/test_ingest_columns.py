"""The ingest request's fold and the rollup worker's series counts, made from the checked
document's columns, equal what the profile-object paths make of the same report (issue 18)."""

from __future__ import annotations

import gzip
from typing import Dict, List, Sequence, Tuple

from hypothesis import given, settings
from hypothesis import strategies as st
from support.server import agent_body

from greenflame.analyzer.formats import greenflame_json, wire_summary
from greenflame.analyzer.model import CPU, WALL, Frame, Profile, SampleType
from greenflame.server.bodies import gunzip_members
from greenflame.server.callpaths import PathCounts, PathIndex, fold_document, fold_profile
from greenflame.server.ingest import stored_body
from greenflame.server.series import path_counts, profile_counts

# Two files with the same module.function key, one of them library code; a recursive frame;
# a frame without a file; the same function at two lines.
FRAMES = [
    Frame("handler", "/var/task/app/handler.py", 10),
    Frame("handler", "/var/task/app/handler.py", 12),
    Frame("get", "/var/task/requests/api.py", 3),
    Frame("get", "/usr/lib/python3.11/site-packages/requests/api.py", 3),
    Frame("loads", "/usr/lib/python3.11/json/__init__.py", 299),
    Frame("walk", "/var/task/app/tree.py", 5),
    Frame("<module>", "", 0),
]
stacks = st.lists(st.integers(0, len(FRAMES) - 1), min_size=0, max_size=8)
rows = st.lists(st.tuples(stacks, st.integers(0, 40), st.integers(0, 40), st.sampled_from(["a", "b"])), max_size=30)
TYPE_SETS = [(WALL, CPU), (CPU,), (WALL,), ("alloc_bytes", WALL)]


def build(parts: Sequence[Tuple[List[int], int, int, str]], types: Sequence[str], invocations: int) -> Profile:
    profile = Profile(
        sample_types=[SampleType(name, "count") for name in types],
        group="svc",
        start_time_unix_ns=1_700_000_000 * 10**9,
        duration_ns=60 * 10**9,
        metadata={"invocations": {"count": invocations, "duration_ms_sum": 2.5 * invocations}} if invocations else {},
    )
    for stack, first, second, label in parts:
        profile.add([FRAMES[i] for i in stack], [first, second][: len(types)], {"endpoint": label})
    return profile


def by_stack(index: PathIndex, counts: PathCounts) -> Dict[Tuple[Frame, ...], Tuple[int, ...]]:
    return {
        tuple(index.frames[f] for f in index.stack(int(path))): tuple(values)
        for path, values in zip(counts.ids.tolist(), counts.values.tolist())
    }


def document_bytes(profile: Profile, version: int) -> bytes:
    """``profile``'s document: version 1 (a sample per object) or 2 (in columns, as the agent sends)."""
    if version == 1:
        return greenflame_json.dumps(profile)
    return agent_body(profile)


@settings(max_examples=200, deadline=None)
@given(rows, st.sampled_from(TYPE_SETS), st.integers(0, 3), st.sampled_from([1, 2]))
def test_the_columns_fold_and_count_a_report_as_its_profile_does(
    parts: List[Tuple[List[int], int, int, str]], types: Tuple[str, ...], invocations: int, version: int
) -> None:
    profile = build(parts, types, invocations)
    summary = wire_summary.summarize(document_bytes(profile, version))
    assert summary.document is not None
    index = PathIndex()
    index.leaf((index.frame_id(FRAMES[5]),))  # the index already holds some paths
    from_columns = fold_document(index, summary)
    from_profile = fold_profile(index, greenflame_json.loads(greenflame_json.dumps(profile)))
    assert by_stack(index, from_columns) == by_stack(index, from_profile)
    assert (from_columns.start_ns, from_columns.end_ns, from_columns.types) == (
        from_profile.start_ns,
        from_profile.end_ns,
        from_profile.types,
    )
    assert path_counts(index, from_columns, summary.metadata) == profile_counts(profile)


def test_a_capped_fold_is_counted_from_the_profile() -> None:
    profile = build([([0, 1], 1, 1, "a"), ([0, 2], 1, 1, "a"), ([0, 3], 1, 1, "a")], (WALL, CPU), 0)
    index = PathIndex()
    capped = fold_document(index, wire_summary.summarize(greenflame_json.dumps(profile)), max_paths=2)
    assert capped.capped == 2
    assert path_counts(index, capped, profile.metadata) is None


def test_one_gzip_member_is_stored_as_received_without_a_second_decompression() -> None:
    document = b'{"format": "greenflame"}'
    one = gzip.compress(document, mtime=1)
    two = gzip.compress(document[:5]) + gzip.compress(document[5:])
    assert gunzip_members(one, 1000) == (document, 1)
    assert gunzip_members(two, 1000) == (document, 2)
    assert stored_body("gzip", one, document, 1) is one
    stored = stored_body("gzip", two, document, 2)
    assert stored != two and gzip.decompress(stored) == document

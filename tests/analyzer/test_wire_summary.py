"""wire_summary.summarize accepts exactly what greenflame_json.loads (plus validate) accepts, with the same errors."""

from __future__ import annotations

import base64
import copy
import json
import random
import struct
from typing import Any, List, Optional, Tuple

import pytest
from support.builders import lambda_profile

from greenflame.agent.columns import columnar
from greenflame.analyzer.formats import greenflame_json, wire_summary
from greenflame.analyzer.formats.wire_summary import DocumentSummary, summarize
from greenflame.analyzer.model import ProfileError

Outcome = Tuple[str, Any]


def full_reader(data: bytes) -> Outcome:
    try:
        profile = greenflame_json.loads(data)
        profile.validate()
    except ProfileError as error:
        return "error", str(error)
    return "ok", DocumentSummary.of(profile)


def fast_reader(data: bytes) -> Outcome:
    try:
        return "ok", summarize(data)
    except ProfileError as error:
        return "error", str(error)


def base_document() -> Any:
    profile = lambda_profile(invocations=3)
    profile.add(profile.frames[:2], [1, 0], {"endpoint": "GET /caf\u00e9"})
    document = greenflame_json.profile_to_dict(profile)
    document["metadata"]["free"] = {"nested": [1, 2.5, "x"], "big": 2**62}
    return document


def as_bytes(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False, allow_nan=True).encode("utf-8", "surrogatepass")


def test_a_valid_document_gives_the_summary_of_its_profile() -> None:
    data = as_bytes(base_document())
    assert fast_reader(data) == full_reader(data)
    assert wire_summary._typed_summary(data) is not None  # the fast checks vouched for it
    summary = summarize(data)
    assert summary.sample_count == len(greenflame_json.loads(data).samples)
    assert summary.max_depth == max(len(s.stack) for s in greenflame_json.loads(data).samples)


# Replacement values that exercise every type check: wrong JSON types, bounds, bools for ints,
# integers beyond 64 bits, lone surrogates, NaN.
ODD_VALUES: List[Any] = [
    None,
    True,
    -1,
    0,
    1.0,
    2**63,
    2**64 + 1,
    -(2**63) - 1,
    10**30,
    float("nan"),
    1e300,
    "",
    "\ud800",
    "x",
    [],
    [0],
    [-1, 1],
    [True, 0],
    {},
    {"a": "\udc00"},
    {"a": 1},
    [2**53, 2**53],
]

PATHS: List[Tuple[Any, ...]] = [
    ("format",),
    ("version",),
    ("group",),
    ("start_time_unix_ns",),
    ("duration_ns",),
    ("sample_period_ns",),
    ("sample_types",),
    ("sample_types", 0),
    ("sample_types", 0, "name"),
    ("sample_types", 1, "unit"),
    ("frames",),
    ("frames", 0),
    ("frames", 1, "function"),
    ("frames", 2, "file"),
    ("frames", 3, "line"),
    ("samples",),
    ("samples", 0),
    ("samples", 1, "stack"),
    ("samples", 1, "stack", 0),
    ("samples", 2, "values"),
    ("samples", 2, "values", 1),
    ("samples", 0, "labels"),
    ("samples", 0, "labels", "lambda_phase"),
    ("metadata",),
    ("metadata", "lambda", "memory_size_mb"),
    ("metadata", "invocations", "duration_ms_sum"),
    ("metadata", "free", "nested", 1),
    ("metadata", "free", "big"),
]


def replaced(document: Any, path: Tuple[Any, ...], value: Any) -> Any:
    changed = copy.deepcopy(document)
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return changed


# Version 2, the samples in columns (what the agent sends): its documents, odd columns and paths.


def columnar_document() -> Any:
    return columnar(base_document())


def packed(code: str, numbers: List[int]) -> str:
    """``numbers`` as little-endian integers (``I``: unsigned 32-bit, ``q``: signed 64-bit), base64."""
    return base64.b64encode(struct.pack(f"<{len(numbers)}{code}", *numbers)).decode("ascii")


# Columns of the wrong kind, the wrong length, out of range or not base64 at all.
ODD_COLUMNS: List[Any] = [
    *ODD_VALUES,
    packed("I", []),
    packed("I", [0]),
    packed("I", [0, 1, 2, 3, 4, 5, 6, 7]),
    packed("I", [2**32 - 1] * 3),
    packed("q", [-1, 0, 0, 0, 0, 0]),
    packed("q", [2**62, 2**62, 0, 0, 0, 0]),
    "AAE",
    "A===",
    "AAEC\n",
    "AB==",
    "____",
]

COLUMN_PATHS: List[Tuple[Any, ...]] = [
    ("version",),
    ("frames",),
    ("frames", "functions"),
    ("frames", "functions", 1),
    ("frames", "files"),
    ("frames", "files", 2),
    ("frames", "lines"),
    ("samples",),
    ("samples", "count"),
    ("samples", "depths"),
    ("samples", "stacks"),
    ("samples", "values"),
    ("samples", "labels"),
    ("samples", "label_sets"),
    ("samples", "label_sets", 0),
    ("samples", "label_sets", 1, "endpoint"),
]

#: Each document kind's maker, the paths to replace in it and the values to put there.
KINDS = {"rows": (base_document, PATHS, ODD_VALUES), "columns": (columnar_document, COLUMN_PATHS, ODD_COLUMNS)}
ODD_CASES = [(kind, path) for kind, (_, paths, _) in KINDS.items() for path in paths]


@pytest.mark.parametrize(
    "kind, path", ODD_CASES, ids=[f"{kind}-{'.'.join(map(str, path))}" for kind, path in ODD_CASES]
)
def test_every_odd_value_at_every_field_gets_the_full_readers_outcome(kind: str, path: Tuple[Any, ...]) -> None:
    make, _, odd_values = KINDS[kind]
    document = make()
    for value in odd_values:
        data = as_bytes(replaced(document, path, value))
        assert fast_reader(data) == full_reader(data), (path, value)


def test_removed_fields_and_odd_documents_get_the_full_readers_outcome() -> None:
    document = base_document()
    cases: List[bytes] = [b"", b"[]", b"NaN", b"{", b"\xef\xbb\xbf{}", b'{"format": "\\ud800"}', b"\xff"]
    for path in PATHS:
        changed = copy.deepcopy(document)
        target = changed
        for key in path[:-1]:
            target = target[key]
        if isinstance(target, dict):
            del target[path[-1]]
        else:
            target.pop(path[-1])
        cases.append(as_bytes(changed))
    for depth in (32, 33, 5000):  # the metadata limit, one over it, and beyond the JSON readers' own
        marked = as_bytes(replaced(document, ("metadata", "free"), "DEEP"))
        cases.append(marked.replace(b'"DEEP"', b"[" * depth + b"]" * depth))
    for data in cases:
        assert fast_reader(data) == full_reader(data), data[:80]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_random_mutations_get_the_full_readers_outcome(kind: str) -> None:
    make, paths, odd_values = KINDS[kind]
    document = make()
    chooser = random.Random(18)
    for _ in range(400):
        changed = copy.deepcopy(document)
        for _ in range(chooser.randint(1, 3)):
            path = chooser.choice(paths)
            try:
                changed = replaced(changed, path, chooser.choice(odd_values))
            except (KeyError, IndexError, TypeError):
                continue
        data = as_bytes(changed)
        assert fast_reader(data) == full_reader(data)


def test_the_summary_builds_the_profile_it_describes() -> None:
    data = as_bytes(base_document())
    built: Optional[Any] = summarize(data).profile()
    assert built == greenflame_json.loads(data)


def test_valid_documents_with_odd_shapes_take_the_fast_path_and_read_as_the_full_reader_does() -> None:
    document = base_document()
    del document["metadata"]
    document["samples"][0].pop("labels", None)
    document["samples"].append({"stack": [], "values": [0, 0]})  # an empty stack is a stack
    document["unknown"] = {"ignored": [1, "x"]}
    document["frames"][0]["extra"] = True
    data = as_bytes(document)
    repeated = data.replace(b'"group": ', b'"group": "first", "group": ', 1)  # the last one counts
    for case in (data, repeated):
        assert wire_summary._typed_summary(case) is not None
        assert fast_reader(case) == full_reader(case)
        assert summarize(case).profile() == greenflame_json.loads(case)


def test_a_columnar_document_is_the_same_profile_and_summary_as_its_rows() -> None:
    rows, columns = as_bytes(base_document()), as_bytes(columnar_document())
    assert json.loads(columns)["version"] == 2
    assert wire_summary._typed_summary(columns) is not None  # the fast checks vouched for it
    assert fast_reader(columns) == full_reader(columns) == full_reader(rows)
    assert greenflame_json.loads(columns) == greenflame_json.loads(rows)
    assert summarize(columns).profile() == greenflame_json.loads(rows)
    by_rows, by_columns = summarize(rows).columns(), summarize(columns).columns()
    assert by_rows.depths.tolist() == by_columns.depths.tolist()
    assert by_rows.stacks.tolist() == by_columns.stacks.tolist()
    assert by_rows.values.tolist() == by_columns.values.tolist()
    assert [by_rows.label_sets[n] for n in by_rows.label_ids] == [
        by_columns.label_sets[n] for n in by_columns.label_ids
    ]


@pytest.mark.parametrize(
    "path, numbers, message",
    [
        (("samples", "stacks"), "frame", "samples[1].stack[1]: frame 99 does not exist (there are 10 frames)"),
        (("samples", "values"), "negative", "samples[2].values[1]: must be at least 0, got -5"),
        (("samples", "labels"), "label set", "samples[0].labels: label set 7 does not exist (there are 3)"),
        (("samples", "depths"), "short", "samples.depths: holds 2 integers, expected 4"),
        (("samples", "values"), "not base64", "samples.values: not valid base64"),
        (("samples", "stacks"), "ragged", "samples.stacks: 5 bytes is not a whole number of 4-byte integers"),
        (("frames", "lines"), "short", "frames.lines: holds 2 integers, expected 10"),
        (("frames", "files"), "few files", "frames.files: has 9 entries, expected one per function (10)"),
        (("frames", "functions", 3), "not a name", "frames.functions[3]: expected a string, got an integer"),
    ],
)
def test_a_bad_column_is_named_as_the_sample_or_frame_it_breaks(
    path: Tuple[str, ...], numbers: str, message: str
) -> None:
    document = columnar_document()
    samples, frames = document["samples"], document["frames"]
    assert samples["count"] == 4 and len(frames["functions"]) == 10 and len(samples["label_sets"]) == 3
    depths = list(struct.unpack(f"<{samples['count']}I", base64.b64decode(samples["depths"])))
    stacks = list(struct.unpack(f"<{sum(depths)}I", base64.b64decode(samples["stacks"])))
    values = list(struct.unpack(f"<{samples['count'] * 2}q", base64.b64decode(samples["values"])))
    changed = {
        "frame": packed("I", [*stacks[: depths[0] + 1], 99, *stacks[depths[0] + 2 :]]),
        "negative": packed("q", [*values[:5], -5, *values[6:]]),
        "label set": packed("I", [7, 0, 0, 0]),
        "short": packed("I", depths[:2]),
        "not base64": "AAE",
        "ragged": base64.b64encode(b"\0" * 5).decode("ascii"),
        "few files": frames["files"][:9],
        "not a name": 7,
    }[numbers]
    data = as_bytes(replaced(document, path, changed))
    assert full_reader(data) == fast_reader(data) == ("error", message)

"""wire_summary.summarize accepts exactly what greenflame_json.loads (plus validate) accepts, with the same errors."""

from __future__ import annotations

import copy
import json
import random
from typing import Any, List, Optional, Tuple

import pytest
from support.builders import lambda_profile

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


@pytest.mark.parametrize("path", PATHS, ids=lambda path: ".".join(map(str, path)))
def test_every_odd_value_at_every_field_gets_the_full_readers_outcome(path: Tuple[Any, ...]) -> None:
    document = base_document()
    for value in ODD_VALUES:
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


def test_random_mutations_get_the_full_readers_outcome() -> None:
    document = base_document()
    chooser = random.Random(18)
    for _ in range(400):
        changed = copy.deepcopy(document)
        for _ in range(chooser.randint(1, 3)):
            path = chooser.choice(PATHS)
            try:
                changed = replaced(changed, path, chooser.choice(ODD_VALUES))
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

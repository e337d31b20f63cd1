"""A wire-format document checked without building it: what a server needs to store a report.

:func:`greenflame_json.loads` builds one object per frame and per sample, which is most of what
an ingest request costs. :func:`summarize` accepts exactly the documents ``loads`` accepts (plus
:meth:`Profile.validate`) and returns their header, per-type totals and deepest stack, checking
the frames and samples column by column in C loops (``map``, ``set``, ``min``, ``max``) and
decoding with orjson when it is installed. Whenever a fast check fails, or orjson cannot read
the bytes, the document goes through the full reader instead, so a rejected document gets the
same one-line error naming the first bad field as before, and a document the fast checks
cannot vouch for is judged by the full reader alone.

orjson differs from the standard library in one way that matters: it reads an integer beyond
64 bits as a float. Every field the fast checks type as an integer refuses floats, and a float
of at least 2^63 in magnitude in free-form metadata (an integer literal the standard library
would keep, and refuse, as an int) sends the document to the full reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import chain
from typing import Any, Dict, List, Optional, Tuple

from ..model import Profile, ProfileError
from . import _check as check
from . import greenflame_json
from ._common import json_document

try:  # a well-kept fast JSON reader; the standard library's otherwise
    import orjson
except ImportError:  # pragma: no cover - orjson is part of the server extra
    orjson = None  # type: ignore[assignment]

__all__ = ["DocumentSummary", "decode", "loads", "summarize"]

#: Floats this large in metadata may be integer literals orjson did not keep as ints.
_FLOAT_INT_LIMIT = float(2**63)


@dataclass(frozen=True)
class DocumentSummary:
    """A valid wire-format document's header, sample count, totals per sample type and deepest stack."""

    group: str
    start_time_unix_ns: int
    duration_ns: int
    sample_type_names: Tuple[str, ...]
    totals: Tuple[int, ...]
    sample_count: int
    max_depth: int
    metadata: Dict[str, Any]
    #: The decoded document, for :meth:`profile` (not part of the summary's value).
    document: Any = field(default=None, repr=False, compare=False)

    def has_type(self, name: str) -> bool:
        """Whether the profile has a sample type called ``name``."""
        return name in self.sample_type_names

    def total(self, name: str) -> int:
        """Sum of sample type ``name`` over all samples (the type must exist)."""
        return self.totals[self.sample_type_names.index(name)]

    def profile(self) -> Profile:
        """The document as a :class:`Profile` (built now: one object per frame and sample)."""
        return greenflame_json.profile_from_dict(self.document)

    @classmethod
    def of(cls, profile: Profile, document: Any = None) -> DocumentSummary:
        """The summary of a built profile."""
        names = tuple(t.name for t in profile.sample_types)
        return cls(
            group=profile.group,
            start_time_unix_ns=profile.start_time_unix_ns,
            duration_ns=profile.duration_ns,
            sample_type_names=names,
            totals=tuple(profile.total(name) for name in names),
            sample_count=len(profile.samples),
            max_depth=max((len(s.stack) for s in profile.samples), default=0),
            metadata=profile.metadata,
            document=document,
        )


def decode(data: bytes) -> Any:
    """The JSON document in ``data`` (UTF-8), read by orjson when it can; else as :func:`json_document` does."""
    if orjson is not None:
        try:
            return orjson.loads(data)
        except orjson.JSONDecodeError:
            pass  # the standard library's reader names the problem (or reads what orjson refuses)
    return json_document(data)


def summarize(data: bytes) -> DocumentSummary:
    """Check a wire-format document (UTF-8 JSON bytes) as :func:`greenflame_json.loads` does; its summary."""
    document = decode(data)
    try:
        found = _fast_summary(document)
    except ProfileError:
        found = None
    if found is not None:
        return found
    canonical = json_document(data) if orjson is not None else document
    profile = greenflame_json.profile_from_dict(canonical)  # raises the error naming the first bad field
    profile.validate()
    return DocumentSummary.of(profile, canonical)


def _fast_summary(doc: Any) -> Optional[DocumentSummary]:
    """The summary when every fast check passes; None (or ProfileError) when the full reader must judge."""
    if type(doc) is not dict:
        return None
    try:
        greenflame_json._check_header(doc)
        names = tuple(t.name for t in greenflame_json._sample_types(doc["sample_types"]))
        frame_count = _frame_count(doc["frames"])
        samples = doc["samples"]
        if frame_count is None or type(samples) is not list:
            return None
        columns = _sample_columns(samples, len(names), frame_count)
        if columns is None:
            return None
        totals, max_depth = columns
        metadata = greenflame_json.validate_metadata(doc.get("metadata", {}), "metadata")
        if _has_huge_float(metadata):
            return None
        check.integer(doc["sample_period_ns"], "sample_period_ns")
        return DocumentSummary(
            group=check.string(doc["group"], "group"),
            start_time_unix_ns=check.integer(doc["start_time_unix_ns"], "start_time_unix_ns"),
            duration_ns=check.integer(doc["duration_ns"], "duration_ns"),
            sample_type_names=names,
            totals=totals,
            sample_count=len(samples),
            max_depth=max_depth,
            metadata=metadata,
            document=doc,
        )
    except (KeyError, TypeError, AttributeError):
        return None


def _frame_count(frames: Any) -> Optional[int]:
    """How many frames, when each is an object with string ``function`` and ``file`` and a natural ``line``."""
    if type(frames) is not list:
        return None
    if not frames:
        return 0
    if set(map(type, frames)) != {dict}:
        return None
    functions = [frame["function"] for frame in frames]
    files = [frame["file"] for frame in frames]
    lines = [frame["line"] for frame in frames]
    if not (_strings(functions) and _strings(files) and _naturals_below(lines, check.INT64_MAX + 1)):
        return None
    return len(frames)


def _sample_columns(samples: List[Any], width: int, frame_count: int) -> Optional[Tuple[Tuple[int, ...], int]]:
    """Totals per column and the deepest stack, when every sample checks out; else None."""
    if not samples:
        return (0,) * width, 0
    if set(map(type, samples)) != {dict}:
        return None
    stacks = [sample["stack"] for sample in samples]
    values = [sample["values"] for sample in samples]
    labels = [sample["labels"] for sample in samples if "labels" in sample]
    if set(map(type, stacks)) != {list} or set(map(type, values)) != {list} or set(map(len, values)) != {width}:
        return None
    if not _naturals_below(list(chain.from_iterable(stacks)), frame_count):
        return None
    flat = list(chain.from_iterable(values))
    if not _naturals_below(flat, check.INT64_MAX + 1):
        return None
    totals = tuple(sum(flat[column::width]) for column in range(width))
    if max(totals) > greenflame_json.MAX_COLUMN_TOTAL or not _label_maps(labels):
        return None
    return totals, max(map(len, stacks))


def _label_maps(labels: List[Any]) -> bool:
    """Whether every labels value is an object of strings to strings."""
    if not labels:
        return True
    if set(map(type, labels)) != {dict}:
        return False
    keys = list(chain.from_iterable(labels))
    values = list(chain.from_iterable(map(dict.values, labels)))
    return _strings(keys) and _strings(values)


def _strings(items: List[Any]) -> bool:
    """Whether every item is a str that is valid UTF-8 (no lone surrogate)."""
    if not items:
        return True
    if set(map(type, items)) != {str}:
        return False
    joined = "".join(items)
    if joined.isascii():
        return True
    try:
        joined.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _naturals_below(items: List[Any], limit: int) -> bool:
    """Whether every item is an int (not a bool) in ``[0, limit)``."""
    return greenflame_json._naturals_below(items, limit)


def _has_huge_float(value: Any) -> bool:
    """Whether ``value`` (checked metadata) holds a float of magnitude 2^63 or more anywhere."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float) and abs(item) >= _FLOAT_INT_LIMIT:
            return True
    return False


def loads(data: bytes) -> Profile:
    """:func:`greenflame_json.loads`, decoding with orjson when it reads the document as the standard library would."""
    document = decode(data)
    if orjson is not None:
        try:
            profile = greenflame_json.profile_from_dict(document)
        except ProfileError:
            profile = None
        if profile is not None and not _has_huge_float(profile.metadata):
            return profile
    return greenflame_json.loads(data)

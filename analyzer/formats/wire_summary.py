"""A wire-format document checked without building it: what a server needs to store a report.

:func:`greenflame_json.loads` builds one object per frame and per sample, which is most of what
an ingest request costs. :func:`summarize` accepts exactly the documents ``loads`` accepts (plus
:meth:`Profile.validate`) and returns their header, per-type totals and deepest stack. msgspec
decodes the bytes straight into typed structures (:class:`WireDocument`), checking every field's
type and bounds as it reads; the checks that span fields (frame indices, widths, totals, names,
metadata) then run in C loops (``map``, ``set``, ``min``, ``max``). Whenever msgspec refuses the
bytes or a check fails, the document goes through the full reader instead, so a rejected document
gets the same one-line error naming the first bad field as before, and a document the fast checks
cannot vouch for is judged by the full reader alone.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from itertools import chain
from typing import Annotated, Any, Dict, List, Optional, Tuple

import msgspec

from ..model import WIRE_FORMAT, WIRE_VERSION, Frame, Profile, ProfileError, Sample, SampleType
from . import _check as check
from . import greenflame_json

__all__ = ["DocumentSummary", "WireDocument", "loads", "summarize"]

#: An integer the wire format accepts where it wants a natural number (see ``_check.integer``).
_Natural = Annotated[int, msgspec.Meta(ge=0, le=check.INT64_MAX)]


# Decoded JSON holds no reference cycles, so these need no garbage collector tracking (gc=False).
class WireSampleType(msgspec.Struct, gc=False):
    """``sample_types[i]``."""

    name: str
    unit: str


class WireFrame(msgspec.Struct, gc=False):
    """``frames[i]``."""

    function: str
    file: str
    line: _Natural


class WireSample(msgspec.Struct, gc=False):
    """``samples[i]``."""

    stack: List[_Natural]
    values: List[_Natural]
    labels: Dict[str, str] = {}


class WireDocument(msgspec.Struct, gc=False):
    """A wire-format document as msgspec reads it (unknown fields ignored, as the format requires)."""

    format: str
    version: int
    group: str
    start_time_unix_ns: _Natural
    duration_ns: _Natural
    sample_period_ns: _Natural
    sample_types: List[WireSampleType]
    frames: List[WireFrame]
    samples: List[WireSample]
    metadata: Dict[str, Any] = {}

    @classmethod
    def of(cls, profile: Profile) -> WireDocument:
        """The document of a built profile."""
        return cls(
            format=WIRE_FORMAT,
            version=WIRE_VERSION,
            group=profile.group,
            start_time_unix_ns=profile.start_time_unix_ns,
            duration_ns=profile.duration_ns,
            sample_period_ns=profile.sample_period_ns,
            sample_types=[WireSampleType(t.name, t.unit) for t in profile.sample_types],
            frames=[WireFrame(f.function, f.file, f.line) for f in profile.frames],
            samples=[WireSample(list(s.stack), list(s.values), dict(s.labels)) for s in profile.samples],
            metadata=profile.metadata,
        )


_DECODER = msgspec.json.Decoder(WireDocument)


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
    #: The checked document, for :meth:`profile` and the server's fold (not part of the summary's value).
    document: Optional[WireDocument] = field(default=None, repr=False, compare=False)

    def has_type(self, name: str) -> bool:
        """Whether the profile has a sample type called ``name``."""
        return name in self.sample_type_names

    def total(self, name: str) -> int:
        """Sum of sample type ``name`` over all samples (the type must exist)."""
        return self.totals[self.sample_type_names.index(name)]

    def wire(self) -> WireDocument:
        """The checked document; ValueError for a summary made without it (:meth:`of` a built profile)."""
        if self.document is None:
            raise ValueError("this summary was made without its document")
        return self.document

    def profile(self) -> Profile:
        """The document as a :class:`Profile` (built now: one object per frame and sample)."""
        doc = self.wire()
        return Profile(
            sample_types=[SampleType(t.name, t.unit) for t in doc.sample_types],
            frames=[Frame(f.function, f.file, f.line) for f in doc.frames],
            samples=[Sample(tuple(s.stack), list(s.values), dict(s.labels)) for s in doc.samples],
            group=doc.group,
            start_time_unix_ns=doc.start_time_unix_ns,
            duration_ns=doc.duration_ns,
            sample_period_ns=doc.sample_period_ns,
            metadata=copy.deepcopy(self.metadata),
        )

    @classmethod
    def of(cls, profile: Profile, document: Optional[WireDocument] = None) -> DocumentSummary:
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


def summarize(data: bytes) -> DocumentSummary:
    """Check a wire-format document (UTF-8 JSON bytes) as :func:`greenflame_json.loads` does; its summary."""
    found = _typed_summary(data)
    if found is not None:
        return found
    profile = greenflame_json.loads(data)  # raises the error naming the first bad field
    profile.validate()
    return DocumentSummary.of(profile, WireDocument.of(profile))


def _typed_summary(data: bytes) -> Optional[DocumentSummary]:
    """The summary when msgspec reads the document and every check passes; None when the full
    reader must judge."""
    try:
        doc = _DECODER.decode(data)
    except (msgspec.DecodeError, RecursionError):
        return None
    if doc.format != WIRE_FORMAT or not 1 <= doc.version <= WIRE_VERSION:
        return None
    names = tuple(t.name for t in doc.sample_types)
    if not names or "" in names or len(set(names)) != len(names):
        return None
    columns = _sample_columns(doc.samples, len(names), len(doc.frames))
    if columns is None:
        return None
    try:
        metadata = greenflame_json.validate_metadata(doc.metadata, "metadata")
    except ProfileError:
        return None
    totals, max_depth = columns
    return DocumentSummary(
        group=doc.group,
        start_time_unix_ns=doc.start_time_unix_ns,
        duration_ns=doc.duration_ns,
        sample_type_names=names,
        totals=totals,
        sample_count=len(doc.samples),
        max_depth=max_depth,
        metadata=metadata,
        document=doc,
    )


def _sample_columns(samples: List[WireSample], width: int, frame_count: int) -> Optional[Tuple[Tuple[int, ...], int]]:
    """Totals per column and the deepest stack, when every sample checks out; else None."""
    if not samples:
        return (0,) * width, 0
    stacks = [sample.stack for sample in samples]
    values = [sample.values for sample in samples]
    if set(map(len, values)) != {width}:
        return None
    if max(map(max, filter(None, stacks)), default=-1) >= frame_count:
        return None
    flat = list(chain.from_iterable(values))
    totals = tuple(sum(flat[column::width]) for column in range(width))
    if max(totals) > greenflame_json.MAX_COLUMN_TOTAL:
        return None
    return totals, max(map(len, stacks))


def loads(data: bytes) -> Profile:
    """:func:`greenflame_json.loads`, read through msgspec when the document passes :func:`summarize`'s checks."""
    found = _typed_summary(data)
    return found.profile() if found is not None else greenflame_json.loads(data)
